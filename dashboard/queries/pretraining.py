"""`runner pretrain` runs and their per-epoch collapse diagnostics, for the Pretraining page.

- `load_pretraining(path) -> (runs, epochs)`: every pretraining run (newest first, with a `label` from
  `label_pretraining`) and every per-epoch row, from one snapshot.
- `pretrain_curves(runs, epochs) -> long`: one row per recorded diagnostic (`PRETRAIN_METRICS`), `kept`
  marking the epoch a run kept.
- `pretrain_summary(runs) -> rows`: starting model -> kept epoch per diagnostic, one row per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.store import warehouse as wh

# Per-epoch diagnostics, in the order the page draws them, with the titles it gives them.
PRETRAIN_METRICS = {"loss": "loss (L1)", "embedding_std": "embedding std", "effective_rank": "effective rank",
                    "probe_acc": "probe accuracy"}


def load_pretraining(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pretraining run (newest first, with a `label`) and every per-epoch row, from one snapshot."""
    with wh.read_connection(path) as conn:
        runs = conn.execute("SELECT * FROM pretrain_runs ORDER BY started_at DESC NULLS LAST, pretrain_id").df()
        epochs = conn.execute("SELECT * FROM pretrain_epochs ORDER BY pretrain_id, epoch").df()
    return label_pretraining(runs), epochs


def label_pretraining(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `label`: '<id> · <model> on <dataset>' (the starting model and data say which run is which)."""
    runs = runs.copy()
    names = [f"{row.pretrain_id[:8]} · {Path(str(row.model)).name} on {Path(str(row.dataset)).name}"
             for row in runs.itertuples()]
    runs["label"] = pd.Series(names, index=runs.index, dtype=object)
    return runs


def pretrain_curves(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Long rows `run, pretrain_id, epoch, metric, value, kept` (kept: the epoch whose weights the run kept),
    one per recorded diagnostic; a run without a probe set has no probe rows."""
    merged = epochs.merge(runs[["pretrain_id", "label", "chosen_epoch"]], on="pretrain_id")
    long = merged.melt(id_vars=["pretrain_id", "label", "epoch", "chosen_epoch"], value_vars=list(PRETRAIN_METRICS),
                       var_name="metric", value_name="value").dropna(subset=["value"])
    long["kept"] = long["epoch"] == long["chosen_epoch"]
    long["metric"] = long["metric"].map(PRETRAIN_METRICS)
    return long.rename(columns={"label": "run"}).drop(columns="chosen_epoch").reset_index(drop=True)


def pretrain_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it started from, how long, which epoch it kept, and each diagnostic as
    'starting model -> kept epoch' (rank and std towards 1 and 0 mean collapse; probe accuracy should rise)."""
    def change(start: Any, kept: Any, fmt: str) -> str:
        if pd.isna(kept):
            return "-"
        return f"{format(start, fmt) if pd.notna(start) else '-'} -> {format(kept, fmt)}"

    rows = [{"run": row.label, "status": row.status, "videos": row.num_videos, "epochs": row.epochs,
             "kept epoch": "-" if pd.isna(row.chosen_epoch) else f"{int(row.chosen_epoch)} ({row.chosen_by})",
             "final loss": "-" if pd.isna(row.final_loss) else f"{row.final_loss:.4f}",
             "effective rank": change(row.initial_effective_rank, row.effective_rank, ".1f"),
             "embedding std": change(row.initial_embedding_std, row.embedding_std, ".3f"),
             "probe accuracy": change(row.initial_probe_acc, row.probe_acc, ".1%"),
             "minutes": "-" if pd.isna(row.train_seconds) else f"{row.train_seconds / 60:.1f}",
             "model folder": row.output_path if row.status == "success" else row.error}
            for row in runs.itertuples()]
    return pd.DataFrame(rows)
