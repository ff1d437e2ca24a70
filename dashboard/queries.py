"""Warehouse -> DataFrames for the dashboard. Reads are short read-only blocks; shaping is pure.

Reads (take the warehouse path; never write, migrate or create the file; raise `UserError`, e.g.
`WarehouseBusy`, for the page to show):
- `warehouse_status(path) -> Status`: ok / missing / busy / unreadable / no_schema / old / newer /
  empty / only_failed, with a friendly explanation and the command to run.
- `load_runs(path) -> runs`: every `runs` row plus `config_id` (hash of the spec without `seed`: the
  runs of one configuration differ only by seed), `config` (a label naming what differs between
  configurations), `train_vpc` (training videos per class actually used), `chance_acc` (share of the
  largest test class: what always answering it scores) and `above_chance_p` (exact binomial test).
- `load_run_tables(path, run_ids) -> {table: DataFrame}`: runs, epochs, class_metrics, confusion,
  predictions of those runs, from one snapshot.
- `matrix_progress(path) -> (progress, recent)`: one row per matrix with done / total / ETA (a
  'running' matrix whose process died on this machine shows as 'stopped'), and
  the newest runs.
- `running_now(path) -> claims`: which process (host, PID, command) trains which run, since when,
  its last heartbeat, and whether that process is alive (`running`) or gone (`gone`: the next
  runner takes the run over); shaped by `shape_claims`.
- `load_pretraining(path) -> (runs, epochs)`: `runner pretrain` runs (with a `label`) and their
  per-epoch collapse diagnostics; shaped by `pretrain_curves` (long, one row per diagnostic, `kept`
  marks the epoch a run kept) and `pretrain_summary` (starting model -> kept epoch per diagnostic).
Shaping (DataFrame in, DataFrame out): `filter_runs`, `leaderboard` (one row per configuration:
`<metric>_mean/_std/_ci_low/_ci_high`, `<accuracy>_interval` (which interval: t over seeds, or with one
  seed Wilson over the videos scored), `n`, `failed`, `best_in_strategy`, `chance_acc`, `above_chance`:
seeds above chance at p < 0.05), `chance_levels`, `pareto`, `scaling`,
`sweep_grid`, `varying_options`, `parallel_coordinates`, `top_configs`, `curves_long`,
`confusion_grid`, `confusion_delta`, `class_deltas`, `worst_videos`, `time_split`,
`significance`, `reproduce_command`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from vjepa_core import paths
from vjepa_core.analysis.stats import (
    ALPHA,
    above_chance_p,
    accuracy_summary,
    chance_level,
    compare_predictions,
    summarize,
)
from vjepa_core.errors import UserError
from vjepa_core.spec import RunSpec, config_id, field_names
from vjepa_core.store import warehouse as wh
from vjepa_core.store.claims import claim_alive, pid_alive, utc_now
from vjepa_core.strategies import STRATEGIES

METRICS = ("test_acc", "best_val_acc", "train_seconds")
METRIC_BOUNDS = {"test_acc": (0.0, 1.0), "best_val_acc": (0.0, 1.0), "train_seconds": (0.0, math.inf)}
SUMMARY_KEYS = ("mean", "std", "ci_low", "ci_high")
RUN_TABLES = ("runs", "epochs", "class_metrics", "confusion", "predictions")
TIME_PHASES = ("decode_seconds", "encode_seconds", "fit_seconds", "eval_seconds")
# What the parallel-coordinates view may sweep over: hyper-parameters, not bookkeeping.
NOT_SWEPT = ("seed", "data", "split_seed")


@dataclass(frozen=True)
class Status:
    """What the warehouse holds, in words a user can act on; `kind == "ok"` means pages can render."""

    kind: str
    title: str
    detail: str = ""
    command: str = ""
    runs: int = 0
    succeeded: int = 0
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


# -- reads ---------------------------------------------------------------------------------------


def warehouse_status(path: str | Path) -> Status:
    """Can the pages render, and if not, why and what to run; never raises for a bad file."""
    path = Path(path)
    run_matrix = command_for("runner run-matrix", path)
    if not path.exists():
        return Status("missing", f"No warehouse at `{path}` yet.",
                      "Run an experiment matrix first; the dashboard fills in as runs finish.", run_matrix)
    try:
        version = wh.schema_version(path)
    except wh.WarehouseBusy as error:
        return Status("busy", "The warehouse is busy; retrying.", str(error))
    except (UserError, duckdb.Error) as error:
        return Status("unreadable", f"`{path}` cannot be read.", str(error).splitlines()[0], run_matrix)
    if not version:
        return Status("no_schema", f"`{path}` holds no vjepa-lab results.",
                      "It is empty or another program's DuckDB file. Point the dashboard at a warehouse "
                      "(--warehouse / VJEPA_WAREHOUSE) or fill this one:", run_matrix)
    if version < wh.SCHEMA_VERSION:
        upgrade = f"python -c \"from vjepa_core.store.warehouse import Warehouse; Warehouse('{path}').migrate()\""
        return Status("old", f"`{path}` has schema version {version}; this dashboard reads {wh.SCHEMA_VERSION}.",
                      "The dashboard only reads, so it does not upgrade files. Any runner write upgrades it, "
                      "or upgrade it now:", upgrade)
    if version > wh.SCHEMA_VERSION:
        return Status("newer", f"`{path}` has schema version {version}, newer than this vjepa-lab reads "
                      f"({wh.SCHEMA_VERSION}).", "Upgrade vjepa-lab:", "pip install -U vjepa-lab")
    return _content_status(path, run_matrix)


def _content_status(path: Path, run_matrix: str) -> Status:
    try:
        with wh.read_connection(path) as conn:
            counts = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
            errors = conn.execute("SELECT DISTINCT error FROM runs WHERE status = 'failed' AND error IS NOT NULL "
                                  "ORDER BY error LIMIT 5").fetchall()
    except wh.WarehouseBusy as error:
        return Status("busy", "The warehouse is busy; retrying.", str(error))
    total, succeeded = sum(counts.values()), counts.get("success", 0)
    if total == 0:
        return Status("empty", f"`{path}` has no runs yet.", "Run experiments to fill it:", run_matrix)
    if succeeded == 0:
        return Status("only_failed", f"All {total} run(s) in `{path}` failed.",
                      "Nothing to chart yet. Fix the error below, then run again:",
                      command_for("runner list --status failed", path), runs=total,
                      errors=tuple(row[0] for row in errors))
    return Status("ok", f"{succeeded} successful run(s) of {total}.", runs=total, succeeded=succeeded)


def command_for(command: str, path: Path) -> str:
    # The default path needs no flag; anything else must be passed, or the command writes elsewhere.
    default = Path(paths.DEFAULT_WAREHOUSE)
    return command if path == default else f"{command} --warehouse {shlex.quote(str(path))}"


def load_runs(path: str | Path) -> pd.DataFrame:
    """Every run, oldest first, with `config_id`, `config` and `train_vpc` added."""
    with wh.read_connection(path) as conn:
        runs = conn.execute(RUNS_SQL.format(where="")).df()
    return enrich_runs(runs)


# Each run with its test class counts: `stats.chance_level` turns them into its chance level.
RUNS_SQL = """
SELECT runs.*, chance.test_largest_class, chance.test_support
FROM runs LEFT JOIN (
    SELECT run_id, max(support) AS test_largest_class, sum(support) AS test_support
    FROM class_metrics WHERE split = 'test' AND support > 0 GROUP BY run_id
) AS chance USING (run_id)
{where}
ORDER BY started_at NULLS LAST, run_id
"""
ONLY_IDS = "WHERE list_contains(?::VARCHAR[], run_id)"


def load_run_tables(path: str | Path, run_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The rows of `run_ids` in every run table, from one consistent snapshot."""
    ids = list(run_ids)
    with wh.read_connection(path) as conn:
        tables = {name: conn.execute(f'SELECT * FROM "{name}" {ONLY_IDS}', [ids]).df()
                  for name in RUN_TABLES if name != "runs"}
        runs = conn.execute(RUNS_SQL.format(where=ONLY_IDS), [ids]).df()
    return {"runs": enrich_runs(runs), **tables}


def matrix_progress(path: str | Path, *, recent: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per matrix: total, done, succeeded, failed, fraction, elapsed and ETA; plus the newest runs."""
    progress_sql = """
        SELECT m.matrix_id, m.name, m.status, m.total_runs, m.started_at, m.updated_at, m.current_run_id, m.pid, m.host,
               count(r.run_id) AS done, count(*) FILTER (WHERE r.status = 'success') AS succeeded,
               count(*) FILTER (WHERE r.status = 'failed') AS failed, max(r.test_acc) AS best_test_acc
        FROM matrices m LEFT JOIN runs r USING (matrix_id)
        GROUP BY ALL ORDER BY m.started_at DESC NULLS LAST"""
    recent_sql = """SELECT run_id, matrix_id, strategy, status, test_acc, best_val_acc, train_seconds, finished_at
                    FROM runs ORDER BY finished_at DESC NULLS LAST LIMIT ?"""
    with wh.read_connection(path) as conn:
        progress = conn.execute(progress_sql).df()
        newest = conn.execute(recent_sql, [recent]).df()
    return _with_eta(_mark_stopped(progress)), newest


def running_now(path: str | Path) -> pd.DataFrame:
    """One row per claimed run, oldest claim first (see `shape_claims`)."""
    sql = """SELECT c.run_id, c.strategy, c.matrix_id, m.name AS matrix_name, c.command, c.host, c.pid,
                    c.pid_started, c.claimed_at, c.heartbeat_at
             FROM claims c LEFT JOIN matrices m USING (matrix_id) ORDER BY c.claimed_at, c.run_id"""
    with wh.read_connection(path) as conn:
        claims = conn.execute(sql).df()
    return shape_claims(claims, now=utc_now())


def shape_claims(claims: pd.DataFrame, *, now: datetime) -> pd.DataFrame:
    """Add `process` ('PID n on host'), `state` (running / gone), `running_seconds`, `heartbeat_age_seconds`."""
    claims = claims.copy()
    records = claims.to_dict("records")
    claims["process"] = [f"PID {row['pid']} on {row['host']}" for row in records]
    claims["state"] = ["running" if claim_alive(row, now=now) else "gone" for row in records]
    claims["running_seconds"] = (now - claims["claimed_at"]).dt.total_seconds()
    claims["heartbeat_age_seconds"] = (now - claims["heartbeat_at"]).dt.total_seconds()
    return claims


def _mark_stopped(progress: pd.DataFrame) -> pd.DataFrame:
    """A 'running' matrix whose process is gone from this machine (kill -9, OOM, reboot) is 'stopped'."""
    progress = progress.copy()
    gone = [status == "running" and process_gone(pid, host)
            for status, pid, host in zip(progress["status"], progress["pid"], progress["host"], strict=True)]
    progress.loc[gone, "status"] = "stopped"
    return progress


def process_gone(pid: Any, host: Any) -> bool:
    """True only if `pid` ran on this machine and no longer exists (another machine's pid is unknowable)."""
    if pd.isna(pid) or host != socket.gethostname():
        return False
    return not pid_alive(pid)


def _with_eta(progress: pd.DataFrame) -> pd.DataFrame:
    progress = progress.copy()
    total = progress["total_runs"].astype("float64")
    done = progress["done"].astype("float64")
    # A re-run matrix skips finished runs, so done can pass total; the bar must still end at 100%.
    progress["fraction"] = (done / total.where(total > 0)).clip(upper=1.0).fillna(0.0)
    elapsed = (progress["updated_at"] - progress["started_at"]).dt.total_seconds()
    progress["elapsed_seconds"] = elapsed
    per_run = elapsed / done.where(done > 0)
    remaining = (total - done).clip(lower=0)
    progress["eta_seconds"] = (per_run * remaining).where(progress["status"] == "running")
    return progress


# -- runs and configurations ---------------------------------------------------------------------


def spec_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return dict(spec)
    if isinstance(spec, str) and spec:
        return json.loads(spec)
    return {}


def enrich_runs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    specs = [spec_dict(spec) for spec in runs.get("spec", pd.Series(dtype=object))]
    runs["config_id"] = [config_id(spec) if spec else run_id for spec, run_id in zip(specs, runs["run_id"],
                                                                                      strict=True)]
    succeeded = [spec for spec, status in zip(specs, runs["status"], strict=True) if status == "success"]
    runs["config"] = config_labels(specs, runs["strategy"].tolist(), basis=succeeded or specs)
    # "All videos" is a number too: the data-scaling axis needs it, and num_train says what it was.
    num_train, num_classes = runs["num_train"].astype("float64"), runs["num_classes"].astype("float64")
    per_class = (num_train / num_classes.where(num_classes > 0)).round()
    runs["train_vpc"] = runs["videos_per_class"].astype("float64").fillna(per_class)
    return with_chance(runs)


def with_chance(runs: pd.DataFrame) -> pd.DataFrame:
    """`chance_acc` (largest test class share, else 1/num_classes) and `above_chance_p` (exact binomial)."""
    runs = runs.copy()
    fallback = 1.0 / runs["num_classes"].astype("float64").where(runs["num_classes"] > 0)
    counts = [runs[c].astype("float64") if c in runs else pd.Series(math.nan, index=runs.index)
              for c in ("test_largest_class", "test_support")]
    runs["chance_acc"] = pd.Series(chance_level(*counts), index=runs.index).fillna(fallback)
    total = runs["num_test"].astype("float64")
    scored = runs["test_acc"].notna() & (total > 0) & runs["chance_acc"].notna()
    correct = (runs["test_acc"].astype("float64") * total).round()
    runs["above_chance_p"] = math.nan
    if scored.any():
        runs.loc[scored, "above_chance_p"] = above_chance_p(correct[scored].to_numpy(), total[scored].to_numpy(),
                                                            runs.loc[scored, "chance_acc"].to_numpy())
    return runs.drop(columns=["test_largest_class", "test_support"], errors="ignore")


def config_labels(specs: list[dict[str, Any]], strategies: list[Any], *,
                  basis: list[dict[str, Any]] | None = None) -> list[str]:
    """`strategy · key=value ...` naming the spec fields that differ between the `basis` runs (default all),
    except those the run's strategy never reads (no `encoder_lr_scale=1` on a `lora` run).

    The basis is the successful runs: a failed run with an odd lr should not lengthen every label.
    """
    basis = specs if basis is None else basis
    keys = sorted({key for spec in basis for key in spec} - {"seed", "strategy"})
    varying = [key for key in keys if len({json.dumps(spec.get(key), default=str) for spec in basis}) > 1]
    labels = []
    for spec, strategy in zip(specs, strategies, strict=True):
        name = str(spec.get("strategy", strategy))
        parts = [f"{_short(key)}={_value_text(key, spec.get(key))}" for key in varying if reads_option(name, key)]
        labels.append(" · ".join([name, *parts]))
    return labels


def reads_option(strategy: str, option: str) -> bool:
    """Whether runs of `strategy` use the spec field `option` (unknown strategies: assume they do)."""
    return strategy not in STRATEGIES or option not in STRATEGIES[strategy].unused_options()


def _short(key: str) -> str:
    return {"videos_per_class": "videos", "frames_per_clip": "frames", "lora_rank": "rank",
            "lora_alpha": "alpha", "lora_dropout": "dropout", "weight_decay": "wd"}.get(key, key)


def _value_text(key: str, value: Any) -> str:
    if value is None:
        return "all" if key == "videos_per_class" else "-"
    if key == "data":
        return Path(str(value)).name or str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def filter_runs(runs: pd.DataFrame, *, matrices: Sequence[str] = (), datasets: Sequence[str] = (),
                models: Sequence[str] = (), strategies: Sequence[str] = (), statuses: Sequence[str] = (),
                dates: tuple[date, date] | None = None) -> pd.DataFrame:
    """Rows matching every non-empty filter; `dates` is an inclusive (first, last) day of `started_at`."""
    keep = pd.Series(True, index=runs.index)
    for column, wanted in (("matrix_id", matrices), ("dataset", datasets), ("model", models),
                           ("strategy", strategies), ("status", statuses)):
        if wanted:
            keep &= runs[column].isin(list(wanted))
    if dates is not None:
        day = pd.to_datetime(runs["started_at"]).dt.date
        keep &= (day >= dates[0]) & (day <= dates[1])
    return runs[keep]


# Accuracies and the number of videos each was scored on: one seed gets a binomial interval over those videos.
SCORED_ON = {"test_acc": "num_test", "best_val_acc": "num_val"}


def _summaries(runs: pd.DataFrame, prefix: str) -> dict[str, Any]:
    if prefix in SCORED_ON:
        scored = runs.dropna(subset=[prefix])
        stats = accuracy_summary(scored[prefix].tolist(), scored[SCORED_ON[prefix]].fillna(0).astype(int).tolist())
        return {f"{prefix}_{key}": stats[key] for key in (*SUMMARY_KEYS, "interval")}
    stats = summarize(runs[prefix].dropna().tolist(), bounds=METRIC_BOUNDS[prefix])
    return {f"{prefix}_{key}": stats[key] for key in SUMMARY_KEYS}


CONFIG_COLUMNS = ("config_id", "config", "strategy", "model", "dataset", "train_vpc", "frames_per_clip", "lr",
                  "lora_rank", "epochs", "trainable_params")


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration over its successful seeds, best test accuracy first."""
    rows = []
    for _, group in runs.groupby("config_id", sort=False):
        success = group[group["status"] == "success"]
        if success.empty:
            continue
        row = {column: success[column].iloc[0] for column in CONFIG_COLUMNS}
        row.update({"n": len(success), "failed": int((group["status"] == "failed").sum()),
                    "run_ids": ",".join(success["run_id"]), "chance_acc": success["chance_acc"].max(),
                    "above_chance": int((success["above_chance_p"] < ALPHA).sum())})
        for metric in METRICS:
            row.update(_summaries(success, metric))
        row["inference_ms_mean"] = success["inference_ms"].mean()
        rows.append(row)
    columns = [*CONFIG_COLUMNS, "n", "failed", "run_ids", "chance_acc", "above_chance",
               *(f"{m}_{k}" for m in METRICS for k in SUMMARY_KEYS), "test_acc_interval", "best_val_acc_interval",
               "inference_ms_mean"]
    board = pd.DataFrame(rows, columns=columns)
    board = board.sort_values(["test_acc_mean", "best_val_acc_mean"], ascending=False, ignore_index=True)
    best = board.groupby("strategy")["test_acc_mean"].idxmax() if not board.empty else []
    board["best_in_strategy"] = board.index.isin(list(best))
    millions = board["trainable_params"].astype("float64") / 1e6
    board["acc_per_mparam"] = board["test_acc_mean"] / millions.where(millions > 0)
    return board


def pareto(board: pd.DataFrame, *, x: str = "trainable_params", y: str = "test_acc_mean") -> pd.DataFrame:
    """`board` with `on_frontier`: no other configuration has fewer (or equal) `x` and a higher `y`."""
    board = board.copy()
    order = board.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    frontier, best = set(), -math.inf
    for index, value in order[y].items():
        if value > best:
            frontier.add(index)
            best = value
    board["on_frontier"] = board.index.isin(frontier)
    return board


def chance_levels(runs: pd.DataFrame) -> list[float]:
    """The distinct chance accuracies of the successful runs (one per dataset and split)."""
    success = runs[runs["status"] == "success"]
    return sorted({round(float(v), 6) for v in success["chance_acc"].dropna()})


def has_variation(runs: pd.DataFrame, column: str) -> bool:
    """True if some strategy has successful runs at two or more values of `column`."""
    success = runs[runs["status"] == "success"].dropna(subset=[column])
    return bool((success.groupby("strategy")[column].nunique() >= 2).any())


def scaling(runs: pd.DataFrame, x: str) -> pd.DataFrame:
    """Long table strategy, `x`, metric (test_acc, best_val_acc, train_seconds), mean/std/ci/n over seeds.

    One line per strategy, per strategy and model when the runs have several models (the default study
    runs `head` on tiny-jepa and on tiny: two lines, never one mean over both)."""
    success = runs[runs["status"] == "success"].dropna(subset=[x]).copy()
    success["strategy"] = series_labels(success)
    rows = []
    for (strategy, value), group in success.groupby(["strategy", x]):
        for metric in METRICS:
            low, high = METRIC_BOUNDS[metric]
            stats = summarize(group[metric].dropna().tolist(), bounds=(low, high))
            band = {"low": max(stats["mean"] - stats["std"], low), "high": min(stats["mean"] + stats["std"], high)}
            rows.append({"strategy": strategy, x: value, "metric": metric, **stats, **band})
    return pd.DataFrame(rows, columns=["strategy", x, "metric", "mean", "std", "n", "ci_low", "ci_high", "low",
                                       "high"])


def series_labels(runs: pd.DataFrame) -> pd.Series:
    """`strategy`, or `strategy on model` (presets without their `preset:` prefix) when models differ."""
    if "model" not in runs or runs["model"].nunique() <= 1:
        return runs["strategy"]
    return runs["strategy"] + " on " + runs["model"].astype(str).str.removeprefix("preset:")


# -- sweeps --------------------------------------------------------------------------------------


def varying_options(runs: pd.DataFrame) -> list[str]:
    """Spec fields (RunSpec order) with two or more values among the successful runs: the swept options."""
    specs = [spec_dict(spec) for spec in runs.loc[runs["status"] == "success", "spec"]]
    return [name for name in field_names() if name not in NOT_SWEPT
            and len({json.dumps(spec.get(name), default=str) for spec in specs}) > 1]


def sweep_grid(runs: pd.DataFrame, *, x: str = "lr", y: str = "lora_rank",
               metric: str = "best_val_acc") -> pd.DataFrame:
    """Mean `metric` and seed count per (strategy, x, y) cell, over successful runs of strategies that read
    both options (a `head` run's lora_rank is a default it never used)."""
    reads = runs["strategy"].map(lambda name: reads_option(name, x) and reads_option(name, y)).astype(bool)
    success = runs[(runs["status"] == "success") & reads].dropna(subset=[x, y])
    grid = success.groupby(["strategy", x, y], as_index=False).agg(mean=(metric, "mean"), n=(metric, "count"))
    return grid


def parallel_coordinates(runs: pd.DataFrame, options: Sequence[str], *, color: str = "best_val_acc"
                         ) -> pd.DataFrame:
    """Long table run_id, config, axis, value (text), position in [0, 1], `color`: one line per run.

    Each axis places its distinct values evenly in sorted order, so a log-spaced lr and a strategy
    name get the same readable spacing; the last axis is `color` itself on its own 0-1 scale.
    """
    success = runs[runs["status"] == "success"]
    specs = [spec_dict(spec) for spec in success["spec"]]
    rows = []
    for option in options:
        values = [spec.get(option) for spec in specs]
        ordered = sorted({json.dumps(v, default=str) for v in values}, key=_sort_key)
        positions = {text: (i / (len(ordered) - 1) if len(ordered) > 1 else 0.5) for i, text in enumerate(ordered)}
        for (_, run), value in zip(success.iterrows(), values, strict=True):
            text = json.dumps(value, default=str)
            rows.append({"run_id": run["run_id"], "config": run["config"], "axis": option,
                         "value": _value_text(option, value), "position": positions[text], color: run[color]})
    for _, run in success.iterrows():
        rows.append({"run_id": run["run_id"], "config": run["config"], "axis": color,
                     "value": f"{run[color]:.3f}", "position": run[color], color: run[color]})
    return pd.DataFrame(rows, columns=["run_id", "config", "axis", "value", "position", color])


def _sort_key(text: str) -> tuple[int, float, str]:
    value = json.loads(text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def top_configs(board: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The k configurations with the best mean validation accuracy, with their test accuracy and gap.

    Ranked on validation, not test: picking by test accuracy would overstate what the winner does on
    new videos; `gap` (val - test) shows how much selection on validation flattered it.
    """
    top = board.sort_values("best_val_acc_mean", ascending=False).head(k).copy()
    top["gap"] = top["best_val_acc_mean"] - top["test_acc_mean"]
    return top.reset_index(drop=True)


# -- one run and comparisons ---------------------------------------------------------------------


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


def confusion_delta(confusion: pd.DataFrame, run_a: str, run_b: str, *, split: str = "test") -> pd.DataFrame:
    """Row rates of run_b minus run_a per (true, predicted) cell: + on the diagonal means b got it right more."""
    grid_a = confusion_grid(confusion[confusion["run_id"] == run_a], split=split)
    grid_b = confusion_grid(confusion[confusion["run_id"] == run_b], split=split)
    merged = grid_a.merge(grid_b, on=["true_class", "pred_class"], how="outer", suffixes=("_a", "_b")).fillna(0)
    merged["delta"] = merged["rate_b"] - merged["rate_a"]
    merged["count_delta"] = (merged["count_b"] - merged["count_a"]).astype(int)
    return merged


def class_deltas(class_metrics: pd.DataFrame, run_ids: Sequence[str], labels: dict[str, str], *,
                 split: str = "test", metric: str = "f1") -> pd.DataFrame:
    """Per class and run: `metric` and its difference from the first run (the baseline)."""
    rows = class_metrics[(class_metrics["split"] == split) & class_metrics["run_id"].isin(list(run_ids))]
    table = rows.pivot_table(index="class_name", columns="run_id", values=metric)
    base = run_ids[0]
    long = []
    for run_id in run_ids:
        if run_id not in table:
            continue
        for class_name, value in table[run_id].items():
            long.append({"class_name": class_name, "run_id": run_id, "run": labels.get(run_id, run_id),
                         metric: value, "delta": value - table[base][class_name] if base in table else math.nan})
    return pd.DataFrame(long, columns=["class_name", "run_id", "run", metric, "delta"])


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


def significance(predictions: pd.DataFrame, run_ids: Sequence[str], labels: dict[str, str], *,
                 split: str = "test") -> pd.DataFrame:
    """Paired test (bootstrap CI + exact McNemar) of each run against the first, on shared videos."""
    scored = predictions[predictions["split"] == split].copy()
    scored["correct"] = scored["correct"].fillna(scored["true_class"] == scored["pred_class"]).astype(bool)
    base = scored[scored["run_id"] == run_ids[0]]
    rows = []
    for run_id in run_ids[1:]:
        other = scored[scored["run_id"] == run_id]
        if base.empty or other.empty:
            continue
        try:
            result = compare_predictions(base, other)
        except UserError:  # no shared videos: different datasets, nothing to pair
            continue
        rows.append({"baseline": labels.get(run_ids[0], run_ids[0]), "run": labels.get(run_id, run_id),
                     **result.as_dict(), "verdict": result.verdict(run_ids[0][:8], run_id[:8])})
    return pd.DataFrame(rows)


def reproduce_command(spec: dict[str, Any]) -> str:
    """`runner run` with a flag for every spec field that differs from RunSpec(): same spec, same run_id."""
    # The dataclass defaults, not RunSpec(): constructing one validates the strategy, which imports torch.
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec)}
    parts = ["runner", "run"]
    for name in field_names():
        if name not in spec or json.dumps(spec[name]) == json.dumps(defaults[name]):  # JSON: a list is a tuple
            continue
        flag, value = "--" + name.replace("_", "-"), spec[name]
        if isinstance(value, list | tuple):
            parts.append(f"{flag}={','.join(map(str, value))}")  # '=': -7,-5 must not read as a flag
        elif isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            # repr round-trips a float exactly, so the rebuilt spec hashes the same.
            parts += [flag, shlex.quote(repr(value) if isinstance(value, float) else str(value))]
    return " ".join(parts)


# -- pretraining (`runner pretrain`) ---------------------------------------------------------------

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
