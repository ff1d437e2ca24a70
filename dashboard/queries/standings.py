"""Summaries over seeds: how each configuration (leaderboard) and each strategy (scaling) scores.

- `leaderboard(runs) -> board`: one row per configuration over its successful seeds:
  `<metric>_mean/_std/_ci_low/_ci_high` for `METRICS`, `<accuracy>_interval` (which interval: t over
  seeds, or with one seed Wilson over the videos scored), `n`, `failed`, `run_ids`, `best_in_strategy` (the
  best of its strategy on validation: `chosen_on_validation`), `chance_acc`, `above_chance` (seeds above chance
  at p < 0.05), `inference_ms_mean`, `acc_per_mparam`.
- `chosen_on_validation(board) -> positions`: the best rows on mean validation accuracy, ties broken as the
  verdict breaks them (`vjepa_core.analysis.costs.TIE_BREAK`), never by the test set: of all rows, or of
  each `by` group.
- `pareto(board, x=, y=) -> board`: adds `on_frontier`.
- `chance_levels(runs) -> [float]`: the distinct chance accuracies of the successful runs.
- `has_variation(runs, column) -> bool`: some strategy ran at two or more values of `column`.
- `scaling(runs, x) -> long`: strategy (per model when models differ), `x`, metric, mean/std/ci/n and a
  +-std band; `series_labels(runs)` names those lines.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from vjepa_core.analysis.costs import costs_of
from vjepa_core.analysis.stats import ALPHA, accuracy_summary, summarize

METRICS = ("test_acc", "best_val_acc", "train_seconds")
METRIC_BOUNDS = {"test_acc": (0.0, 1.0), "best_val_acc": (0.0, 1.0), "train_seconds": (0.0, math.inf)}
SUMMARY_KEYS = ("mean", "std", "ci_low", "ci_high")

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
    """One row per configuration over its successful seeds, highest mean test accuracy first."""
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
        row["tie_seconds"] = costs_of(success).train_seconds  # the training time the verdict's tie rule compares
        rows.append(row)
    columns = [*CONFIG_COLUMNS, "n", "failed", "run_ids", "chance_acc", "above_chance",
               *(f"{m}_{k}" for m in METRICS for k in SUMMARY_KEYS), "test_acc_interval", "best_val_acc_interval",
               "inference_ms_mean", "tie_seconds"]
    board = pd.DataFrame(rows, columns=columns)
    board = board.sort_values(["test_acc_mean", "best_val_acc_mean"], ascending=False, ignore_index=True)
    board["best_in_strategy"] = board.index.isin(board.index[chosen_on_validation(board, by="strategy")])
    millions = board["trainable_params"].astype("float64") / 1e6
    board["acc_per_mparam"] = board["test_acc_mean"] / millions.where(millions > 0)
    return board


# The verdict's ranking (vjepa_core.analysis.verdict): validation first, then the cheaper configuration.
VALIDATION_ORDER = (("best_val_acc_mean", False), ("trainable_params", True), ("tie_seconds", True),
                    ("config_id", True))


def chosen_on_validation(board: pd.DataFrame, *, by: str | None = None) -> list[int]:
    """Positions (`iloc`) of the row with the best mean validation accuracy, or of each `by` group's best."""
    if board.empty:
        return []
    columns, ascending = zip(*VALIDATION_ORDER, strict=True)
    ranked = board.reset_index(drop=True).sort_values(list(columns), ascending=list(ascending), na_position="last")
    first = ranked.groupby(by, sort=False).head(1) if by else ranked.head(1)
    return sorted(first.index)


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
