"""Runs against a baseline (the first run), shaped for the Compare page.

- `significance(predictions, run_ids, labels, split=) -> rows`: paired bootstrap CI + exact McNemar of
  each run against the first, on the videos both scored, with a verdict.
- `class_deltas(class_metrics, run_ids, labels, split=, metric=) -> long`: per class and run, `metric`
  and its change from the first run.
- `confusion_delta(confusion, run_a, run_b, split=) -> grid`: run_b's row rates minus run_a's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from dashboard.queries.detail import confusion_grid
from vjepa_core.analysis.stats import compare_predictions
from vjepa_core.errors import UserError


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



def confusion_delta(confusion: pd.DataFrame, run_a: str, run_b: str, *, split: str = "test") -> pd.DataFrame:
    """Row rates of run_b minus run_a per (true, predicted) cell: + on the diagonal means b got it right more."""
    grid_a = confusion_grid(confusion[confusion["run_id"] == run_a], split=split)
    grid_b = confusion_grid(confusion[confusion["run_id"] == run_b], split=split)
    merged = grid_a.merge(grid_b, on=["true_class", "pred_class"], how="outer", suffixes=("_a", "_b")).fillna(0)
    merged["delta"] = merged["rate_b"] - merged["rate_a"]
    merged["count_delta"] = (merged["count_b"] - merged["count_a"]).astype(int)
    return merged
