"""Seed statistics and paired tests, against numbers worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import TrainedRuns
from scipy import stats as scipy_stats

from vjepa_core.errors import UserError
from vjepa_core.stats import (
    chance_accuracy,
    chance_test,
    compare_predictions,
    compare_runs,
    mcnemar_exact,
    run_chance_test,
    summarize,
)
from vjepa_core.warehouse import Warehouse


def test_summarize_t_interval() -> None:
    s = summarize([0.6, 0.7, 0.8])
    assert s["mean"] == pytest.approx(0.7) and s["std"] == pytest.approx(0.1) and s["n"] == 3
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, df=2)
    assert s["ci_low"] == pytest.approx(0.7 - half) and s["ci_high"] == pytest.approx(0.7 + half)
    assert summarize([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1, "ci_low": 0.5, "ci_high": 0.5}
    assert summarize([])["n"] == 0


def test_summarize_clips_the_interval_to_its_bounds() -> None:
    wide = summarize([0.44, 0.78, 0.46])  # three seeds of `full` on the tiny preset: t-interval past 100%
    assert wide["ci_high"] > 1.0
    clipped = summarize([0.44, 0.78, 0.46], bounds=(0.0, 1.0))
    assert clipped["ci_high"] == 1.0 and clipped["ci_low"] == pytest.approx(wide["ci_low"])
    assert clipped["mean"] == pytest.approx(wide["mean"]) and clipped["std"] == pytest.approx(wide["std"])


def test_mcnemar_exact_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)  # 0.03125
    assert mcnemar_exact(3, 3) == 1.0


def frame(correct: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"video": [f"v{i}" for i in range(len(correct))], "correct": [bool(c) for c in correct]})


def test_clear_difference_is_significant() -> None:
    a = frame([0] * 20 + [1] * 10)
    b = frame([1] * 20 + [1] * 10)
    result = compare_predictions(a, b)
    assert result.n_shared == 30 and result.only_b_correct == 20 and result.only_a_correct == 0
    assert result.diff == pytest.approx(20 / 30)
    assert result.significant and result.mcnemar_p < 1e-5
    assert 0 < result.ci_low < result.diff < result.ci_high <= 1
    assert "a real difference" in result.verdict("head", "lora")


def test_same_accuracy_different_videos_is_noise() -> None:
    a = frame([1, 0, 1, 0, 1, 0, 1, 0])
    b = frame([0, 1, 0, 1, 0, 1, 0, 1])
    result = compare_predictions(a, b)
    assert result.diff == 0 and not result.significant and result.ci_low < 0 < result.ci_high


def test_only_shared_videos_count() -> None:
    a = frame([1, 1, 1])
    b = pd.DataFrame({"video": ["v0", "x1"], "correct": [False, True]})
    assert compare_predictions(a, b).n_shared == 1
    with pytest.raises(UserError, match="share no scored videos"):
        compare_predictions(a, pd.DataFrame({"video": ["z"], "correct": [True]}))


def test_compare_runs_from_the_warehouse(trained_runs: TrainedRuns) -> None:
    run_a, run_b = trained_runs.run_ids[0], trained_runs.run_ids[-1]
    result = compare_runs(trained_runs.warehouse, run_a, run_b)
    assert result.n_shared > 0 and 0 <= result.acc_a <= 1 and 0 <= result.mcnemar_p <= 1
    same = compare_runs(trained_runs.warehouse, run_a, run_a)
    assert same.diff == 0 and same.mcnemar_p == 1.0 and not same.significant


def test_chance_is_the_largest_test_class() -> None:
    assert chance_accuracy([9] * 6) == pytest.approx(1 / 6)
    assert chance_accuracy([30, 10, 10]) == pytest.approx(0.6)  # always answering the big class scores 60%


@pytest.mark.parametrize(("correct", "total"), [(14, 54), (16, 54), (27, 54), (9, 54), (0, 10), (10, 10)])
def test_chance_test_is_the_one_sided_exact_binomial(correct: int, total: int) -> None:
    result = chance_test(correct, total, [total // 6] * 6 if total == 54 else [5, 5])
    expected = scipy_stats.binomtest(correct, total, result.chance, alternative="greater").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_chance_verdicts_on_54_videos_of_6_classes() -> None:
    borderline, clear = chance_test(14, 54, [9] * 6), chance_test(27, 54, [9] * 6)
    assert not borderline.above and borderline.p_value == pytest.approx(0.0561, abs=1e-3)
    assert clear.above and clear.p_value < 1e-7
    assert clear.text() == "chance 16.7%, binomial p = 1.7e-08 on 54 test videos: above chance"
    assert borderline.text().endswith("not distinguishable from chance")


def test_run_chance_test_from_the_warehouse(trained_runs: TrainedRuns) -> None:
    store = Warehouse(trained_runs.warehouse)
    runs = store.runs()
    for run in runs.to_dict("records"):
        metrics = store.table("class_metrics", run["run_id"])
        result = run_chance_test(run, metrics)
        if run["status"] != "success":
            assert result is None
            continue
        supports = metrics[metrics["split"] == "test"]["support"]
        assert result.total == supports.sum() == run["num_test"]
        assert result.chance == pytest.approx(supports.max() / supports.sum())
        assert result.correct / result.total == pytest.approx(run["test_acc"])
