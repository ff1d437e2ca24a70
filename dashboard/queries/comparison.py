"""Runs against a baseline (the first run), shaped for the Compare page.

- `significance(predictions, run_ids, labels, split=) -> rows`: each run against the first with the verdict's
  paired test (`analysis.paired.paired_runs`: exact McNemar on the videos both scored, the p `runner compare`
  and `runner verdict` give), a bootstrap interval over videos and the sentence `runner compare` prints.
- `class_deltas(class_metrics, run_ids, labels, split=, metric=) -> long`: per class and run, `metric`
  and its change from the first run.
- `confusion_delta(confusion, run_a, run_b, split=) -> grid`: run_b's row rates minus run_a's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from dashboard.queries.detail import confusion_grid
from vjepa_core.analysis.paired import correct_by_run, difference_interval, paired_runs
from vjepa_core.analysis.stats import ALPHA
from vjepa_core.analysis.verdict_text import comparison_line

SIGNIFICANCE_COLUMNS = ["baseline", "run", "n_shared", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "p",
                        "only_a_correct", "only_b_correct", "significant", "verdict"]


def significance(predictions: pd.DataFrame, run_ids: Sequence[str], labels: dict[str, str], *,
                 split: str = "test") -> pd.DataFrame:
    """The paired test of each run against the first, on the videos both scored (none shared: no row)."""
    correct = correct_by_run(predictions, split)
    base = run_ids[0]
    rows = []
    for run_id in run_ids[1:]:
        test = paired_runs([(base, run_id)], correct)
        if test is None:  # no shared videos: different datasets, nothing to pair
            continue
        low, high = difference_interval(test)
        names = labels.get(base, base[:8]), labels.get(run_id, run_id[:8])
        rows.append({"baseline": names[0], "run": names[1], "n_shared": test.videos, "acc_a": test.first_accuracy,
                     "acc_b": test.second_accuracy, "diff": -test.difference, "ci_low": -high, "ci_high": -low,
                     "p": test.p, "only_a_correct": test.only_first[0], "only_b_correct": test.only_second[0],
                     "significant": test.p < ALPHA, "verdict": comparison_line(test, *names, (low, high))})
    return pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS)


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
