"""Paired tests and power, against independent computations: statsmodels' exact McNemar, scipy's permutation
test (exact enumeration and Monte Carlo), a hand-written Holm step-down, and a brute-force power simulation."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from tests.support import hand_holm, simulated_power, statsmodels_mcnemar
from vjepa_core.analysis.paired import (
    correct_by_run,
    difference_interval,
    holm,
    mcnemar_exact,
    mcnemar_power,
    min_detectable_difference,
    paired_runs,
    paired_test,
    sign_flip_p,
)
from vjepa_core.analysis.verdict_text import comparison_line


def scipy_sign_flip(differences: np.ndarray, **options: object) -> float:
    result = scipy_stats.permutation_test((differences.astype(float),), lambda x, axis: np.sum(x, axis=axis),
                                          permutation_type="samples", alternative="two-sided", **options)
    return float(result.pvalue)


@pytest.mark.parametrize(("only_first", "only_second", "agree"), [(0, 6, 10), (3, 9, 40), (20, 5, 29), (0, 0, 54),
                                                                   (7, 7, 40), (40, 2, 12), (1, 0, 53)])
def test_one_seed_is_exact_mcnemar(only_first: int, only_second: int, agree: int) -> None:
    first = np.array([True] * only_first + [False] * only_second + [True] * agree)
    second = np.array([False] * only_first + [True] * only_second + [True] * agree)
    result = paired_test(first[None, :], second[None, :])
    expected = statsmodels_mcnemar(first, second)
    assert result.p == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.p_per_seed == pytest.approx((expected,), rel=1e-9)
    assert (result.only_first, result.only_second) == ((only_first,), (only_second,))
    assert result.difference == pytest.approx((only_first - only_second) / len(first))
    assert result.disagreement == pytest.approx((only_first + only_second) / len(first))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_several_seeds_match_scipy_exact_permutation_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    seeds, videos = 3, 40
    first = rng.random((seeds, videos)) < 0.8
    # Mostly the same answers, a few videos differ: few enough nonzero differences to enumerate 2^k signs.
    second = first.copy()
    flip = rng.choice(videos, size=12, replace=False)
    second[:, flip] = rng.random((seeds, 12)) < 0.5
    per_video = (first & ~second).sum(0).astype(int) - (second & ~first).sum(0)
    nonzero = per_video[per_video != 0]
    assert 0 < len(nonzero) <= 12
    expected = scipy_sign_flip(nonzero, n_resamples=np.inf)  # exact: every sign pattern once
    assert paired_test(first, second).p == pytest.approx(expected, rel=1e-9)
    for row in range(seeds):
        assert paired_test(first, second).p_per_seed[row] == pytest.approx(statsmodels_mcnemar(first[row],
                                                                                               second[row]))


def test_many_videos_match_scipy_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    first = rng.random((3, 200)) < 0.75
    second = rng.random((3, 200)) < 0.68
    per_video = (first & ~second).sum(0).astype(int) - (second & ~first).sum(0)
    exact = sign_flip_p(per_video)
    estimate = scipy_sign_flip(per_video, n_resamples=10_000, rng=np.random.default_rng(0))
    assert 0.001 < exact < 0.5
    assert exact == pytest.approx(estimate, abs=4 * np.sqrt(exact * (1 - exact) / 10_000))


def test_mcnemar_exact_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)  # 0.03125
    assert mcnemar_exact(3, 3) == 1.0


def predictions(**runs: list[int]) -> pd.DataFrame:
    """Test predictions of runs named by keyword: right (1) or wrong (0) on videos v0, v1, ... in order."""
    return pd.DataFrame([{"run_id": run, "split": "test", "video": f"v{i}", "true_class": "up",
                          "pred_class": "up" if ok else "down", "correct": None}
                         for run, answers in runs.items() for i, ok in enumerate(answers)])


def test_paired_runs_reads_right_answers_from_predictions() -> None:
    correct = correct_by_run(predictions(a=[0] * 20 + [1] * 10, b=[1] * 30))
    result = paired_runs([("a", "b")], correct)
    assert result is not None and result.videos == 30 and result.only_second == (20,) and result.only_first == (0,)
    assert (result.first_accuracy, result.second_accuracy) == pytest.approx((1 / 3, 1.0))
    assert result.difference == pytest.approx(-20 / 30) and result.p == pytest.approx(2 * 0.5**20)
    low, high = difference_interval(result)
    assert -1 <= low < result.difference < high < 0


def test_equal_accuracy_on_different_videos_is_noise() -> None:
    result = paired_runs([("a", "b")], correct_by_run(predictions(a=[1, 0] * 4, b=[0, 1] * 4)))
    assert result is not None and result.difference == 0 and result.p == pytest.approx(1.0)
    low, high = difference_interval(result)
    assert low < 0 < high


def test_only_videos_every_run_scored_count() -> None:
    frame = predictions(a=[1, 1, 1], b=[0, 1], c=[1, 0, 0, 1])
    frame.loc[(frame["run_id"] == "b") & (frame["video"] == "v1"), "video"] = "x1"
    correct = correct_by_run(frame)
    assert paired_runs([("a", "b")], correct).videos == 1
    assert paired_runs([("a", "b"), ("c", "a")], correct).videos == 1  # v0 only: the videos all four scored
    assert paired_runs([("a", "missing")], correct) is None
    assert paired_runs([("a", "b")], correct_by_run(frame, "val")) is None


def test_the_interval_resamples_videos_with_all_their_seeds() -> None:
    rng = np.random.default_rng(5)
    first, second = rng.random((3, 80)) < 0.8, rng.random((3, 80)) < 0.6
    result = paired_test(first, second)
    per_video = (first.astype(int) - second.astype(int)).mean(axis=0)
    draws = np.random.default_rng(0).integers(0, 80, size=(2000, 80))
    expected = np.quantile(per_video[draws].mean(axis=1), [0.025, 0.975])
    assert difference_interval(result) == pytest.approx(tuple(expected))
    assert per_video.mean() == pytest.approx(result.difference)


def test_sign_flip_edge_cases() -> None:
    assert sign_flip_p([0, 0, 0]) == 1.0
    assert sign_flip_p([3]) == pytest.approx(1.0)  # one video, either sign: nothing to see
    assert sign_flip_p([2, 2, 2, 2, 2, 2]) == pytest.approx(2 * 0.5**6)
    with pytest.raises(ValueError, match="integers"):
        sign_flip_p([0.5, 1.0])
    with pytest.raises(ValueError, match="equal non-empty"):
        paired_test(np.ones((2, 3), bool), np.ones((1, 3), bool))


HOLM_CASES = [[0.01, 0.04, 0.03, 0.2], [0.001, 0.5], [0.04], [0.02, 0.02, 0.02], [0.3, 0.0004, 0.012, 0.9, 0.011]]


def test_holm_matches_statsmodels_and_the_definition() -> None:
    gc.freeze()  # statsmodels' Holm runs gc.collect(): seconds in a process this size, unless nothing is young
    try:
        expected = [list(multipletests(p_values, method="holm")[1]) for p_values in HOLM_CASES]
    finally:
        gc.unfreeze()
    for p_values, theirs in zip(HOLM_CASES, expected, strict=True):
        assert holm(p_values) == pytest.approx(theirs, rel=1e-12)
        assert holm(p_values) == pytest.approx(hand_holm(p_values), rel=1e-12)


def test_holm_skips_untested_comparisons() -> None:
    adjusted = holm([0.01, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert holm([]) == [] and np.isnan(holm([float("nan")])[0])


@pytest.mark.parametrize(("videos", "disagreement", "difference", "alpha"),
                         [(54, 0.3, 0.2, 0.05), (54, 0.15, 0.1, 0.05), (100, 0.2, 0.12, 0.01), (54, 0.1, 0.2, 0.05)])
def test_power_matches_a_brute_force_simulation(videos: int, disagreement: float, difference: float,
                                                alpha: float) -> None:
    draws = 20_000
    exact = mcnemar_power(videos, disagreement, difference, alpha=alpha)
    simulated = simulated_power(videos, disagreement, difference, alpha=alpha, draws=draws, seed=videos)
    assert exact == pytest.approx(simulated, abs=4 * np.sqrt(exact * (1 - exact) / draws))


def test_min_detectable_difference_reaches_80_percent_power_and_no_less() -> None:
    mdd = min_detectable_difference(54, 0.2)
    assert mdd is not None and 0.1 < mdd < 0.3
    assert mcnemar_power(54, 0.2, mdd) >= 0.8 > mcnemar_power(54, 0.2, mdd - 0.001)
    assert simulated_power(54, 0.2, mdd, alpha=0.05, draws=20_000, seed=1) == pytest.approx(0.8, abs=0.015)
    # A stricter alpha or fewer videos need a larger difference; more videos a smaller one.
    assert min_detectable_difference(54, 0.2, alpha=0.01) > mdd > min_detectable_difference(500, 0.2)
    # Connor's normal approximation (n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2) lands close for many videos.
    z_a, z_b, psi = scipy_stats.norm.ppf(0.975), scipy_stats.norm.ppf(0.8), 0.2
    large = min_detectable_difference(2000, psi)
    connor = (z_a * np.sqrt(psi) + z_b * np.sqrt(psi - large**2)) ** 2 / large**2
    assert connor == pytest.approx(2000, rel=0.05)


def test_too_few_videos_detect_nothing() -> None:
    assert min_detectable_difference(5, 0.5) is None  # 5 discordant videos: the exact p is at least 0.0625
    assert mcnemar_power(0, 0.5, 0.5) == 0.0


def test_a_comparison_of_equal_answers_reads_plus_zero_never_minus_zero() -> None:
    right = np.array([[True, False, True]])
    test = paired_test(right, right.copy())
    line = comparison_line(test, "head", "lora", difference_interval(test))
    assert line.startswith("lora vs head: +0.0 points on 3 shared videos, 95% CI [+0.0, +0.0]") and "-0.0" not in line
