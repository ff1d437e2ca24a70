"""Hyper-parameter sweeps: which options vary, and how the runs score across them.

- `varying_options(runs) -> [option]`: spec fields (RunSpec order) with two or more values among the
  successful runs, among those a sweep may vary (`vjepa_core.spec.SWEPT_FIELDS`: not seeds or data).
- `sweep_grid(runs, x=, y=, metric=) -> grid`: mean `metric` and seed count per (strategy, x, y) cell.
- `parallel_coordinates(runs, options, color=) -> long`: run_id, config, axis, value, position in [0, 1].
- `top_configs(board, k) -> top`: the k best configurations by validation accuracy, with the val-test gap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from vjepa_core.analysis.configurations import spec_dict, value_text
from vjepa_core.spec import SWEPT_FIELDS, reads_option


def varying_options(runs: pd.DataFrame) -> list[str]:
    """Spec fields (RunSpec order) with two or more values among the successful runs: the swept options."""
    specs = [spec_dict(spec) for spec in runs.loc[runs["status"] == "success", "spec"]]
    return [name for name in SWEPT_FIELDS if len({json.dumps(spec.get(name), default=str) for spec in specs}) > 1]


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
                         "value": value_text(option, value), "position": positions[text], color: run[color]})
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
