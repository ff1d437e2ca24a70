"""Seed statistics, intervals and the test against chance, against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from vjepa_core.analysis.stats import (
    accuracy_summary,
    chance_accuracy,
    chance_level,
    chance_test,
    summarize,
    wilson_interval,
)


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


@pytest.mark.parametrize(("correct", "total"), [(38, 54), (0, 54), (54, 54), (1, 3), (9, 54)])
def test_wilson_interval_matches_scipy(correct: int, total: int) -> None:
    expected = scipy_stats.binomtest(correct, total).proportion_ci(method="wilson")
    assert wilson_interval(correct, total) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_accuracy_summary_says_which_interval() -> None:
    seeds = accuracy_summary([0.5, 0.6, 0.7], [54, 54, 54])
    assert seeds["interval"] == "t over 3 seeds" and seeds["ci_low"] < 0.6 < seeds["ci_high"]
    assert seeds == {**summarize([0.5, 0.6, 0.7], bounds=(0.0, 1.0)), "interval": "t over 3 seeds"}
    one = accuracy_summary([0.704], [54])
    assert one["interval"] == "Wilson over 54 videos" and one["n"] == 1
    assert one["ci_low"] < 0.704 < one["ci_high"] and one["ci_high"] - one["ci_low"] > 0.2  # 54 videos: wide
    assert accuracy_summary([], [])["interval"] == "none"


def test_chance_level_is_one_definition_for_one_run_and_for_many() -> None:
    assert chance_accuracy([30, 10, 10]) == chance_level(30, 50) == pytest.approx(0.6)
    assert chance_level([9, 30], [54, 50]).tolist() == pytest.approx([1 / 6, 0.6])
