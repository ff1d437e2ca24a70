"""One run, shaped for the Run detail page.

- `curves_long(epochs, labels=None) -> long`: run, epoch, panel (loss / accuracy), split, value.
- `confusion_grid(confusion, split=) -> grid`: every (true, predicted) pair with count and row rate.
- `worst_videos(predictions, split=, k=) -> rows`: confident mistakes first, then unsure right answers.
- `time_split(run) -> rows`: seconds and share per phase (decode, encode, fit, eval, other).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

TIME_PHASES = ("decode_seconds", "encode_seconds", "fit_seconds", "eval_seconds")


def curves_long(epochs: pd.DataFrame, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-epoch curves as rows run, epoch, panel (loss / accuracy), split (train / val), value."""
    columns = {"train_loss": ("loss", "train"), "val_loss": ("loss", "val"),
               "train_acc": ("accuracy", "train"), "val_acc": ("accuracy", "val")}
    long = epochs.melt(id_vars=["run_id", "epoch"], value_vars=list(columns), var_name="series").dropna(
        subset=["value"])
    long["panel"] = long["series"].map(lambda s: columns[s][0])
    long["split"] = long["series"].map(lambda s: columns[s][1])
    names = labels or {}
    long["run"] = long["run_id"].map(lambda run_id: names.get(run_id, run_id))
    return long.sort_values(["run", "series", "epoch"], ignore_index=True)


def confusion_grid(confusion: pd.DataFrame, *, split: str = "test") -> pd.DataFrame:
    """Every (true, predicted) pair of the split's classes with its count and row rate (recall share)."""
    rows = confusion[confusion["split"] == split]
    classes = sorted(set(rows["true_class"]) | set(rows["pred_class"]))
    full = pd.MultiIndex.from_product([classes, classes], names=["true_class", "pred_class"]).to_frame(index=False)
    grid = full.merge(rows[["true_class", "pred_class", "count"]], how="left").fillna({"count": 0})
    grid["count"] = grid["count"].astype(int)
    totals = grid.groupby("true_class")["count"].transform("sum")
    grid["rate"] = (grid["count"] / totals.where(totals > 0)).fillna(0.0)
    return grid


def worst_videos(predictions: pd.DataFrame, *, split: str = "test", k: int = 10) -> pd.DataFrame:
    """The k worst-classified videos: confident mistakes first, then the least confident right answers."""
    rows = predictions[predictions["split"] == split].copy()
    rows["correct"] = rows["correct"].fillna(rows["true_class"] == rows["pred_class"]).astype(bool)
    # Sort key: a wrong answer ranks by how sure the model was; a right one by how unsure.
    rows["badness"] = rows["confidence"].where(~rows["correct"], -rows["confidence"] - 1)
    rows["name"] = rows["video"].map(lambda v: Path(str(v)).name)
    worst = rows.sort_values("badness", ascending=False).head(k)
    return worst[["name", "true_class", "pred_class", "confidence", "correct", "video"]].reset_index(drop=True)


def time_split(run: dict[str, Any]) -> pd.DataFrame:
    """Seconds per phase (decode, encode, fit, eval, other = wall time not in those) of one run."""
    rows = [{"phase": column.removesuffix("_seconds"), "seconds": float(run[column])}
            for column in TIME_PHASES if _number(run.get(column))]
    other = (run.get("train_seconds") or 0.0) - sum(row["seconds"] for row in rows)
    if _number(run.get("train_seconds")) and other > 0.005:
        rows.append({"phase": "other", "seconds": other})
    split = pd.DataFrame(rows, columns=["phase", "seconds"])
    total = split["seconds"].sum()
    split["share"] = split["seconds"] / total if total > 0 else 0.0
    return split


def _number(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
