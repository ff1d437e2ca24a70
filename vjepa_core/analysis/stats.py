"""How sure is one configuration's accuracy? Intervals over seeds or test videos, and the test against chance.

An accuracy's 95% interval is Student-t over the seeds with two or more seeds, Wilson over the test videos
with one; chance is what always answering the largest test class scores, and a run is above it by a one-sided
exact binomial test. Comparing two configurations is `vjepa_core.analysis.paired`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

ALPHA = 0.05


def summarize(values: Sequence[float], *, confidence: float = 0.95,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict[str, float]:
    """Mean, std (n-1), n and a t-interval clipped to `bounds` (an accuracy's interval stays in [0, 1]);
    with one value the interval is the value itself."""
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    n = len(array)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "ci_low": mean, "ci_high": mean}
    std = float(array.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    low, high = bounds
    return {"mean": mean, "std": std, "n": n, "ci_low": max(mean - half, low), "ci_high": min(mean + half, high)}


def wilson_interval(correct: Any, total: Any, *, confidence: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval of a proportion `correct / total` (vectorised): honest at 0% and 100% too,
    where the normal approximation collapses to a point."""
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    n = np.asarray(total, dtype=np.float64)
    p = np.asarray(correct, dtype=np.float64) / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def accuracy_summary(accuracies: Sequence[float], videos: Sequence[int], *,
                     confidence: float = 0.95) -> dict[str, Any]:
    """Mean, std and a 95% interval of one configuration's accuracy, with `interval` saying which kind.

    Two or more seeds: Student-t over the seeds (`summarize`). One seed: a Wilson interval over the videos
    it was scored on, since with one seed the only known noise is that of a finite test set (the seed
    interval would be the point itself and claim a certainty nobody has).
    """
    stats: dict[str, Any] = summarize(accuracies, confidence=confidence, bounds=(0.0, 1.0))
    if stats["n"] >= 2:
        return {**stats, "interval": f"t over {stats['n']} seeds"}
    if stats["n"] == 1 and videos and videos[0] and videos[0] > 0:
        total = int(videos[0])
        low, high = wilson_interval(round(stats["mean"] * total), total, confidence=confidence)
        return {**stats, "ci_low": float(low), "ci_high": float(high), "interval": f"Wilson over {total} videos"}
    return {**stats, "interval": "none"}


@dataclass(frozen=True)
class ChanceTest:
    chance: float   # accuracy of always answering the largest test class
    correct: int
    total: int
    p_value: float  # P(at least `correct` right | every video right with probability `chance`)

    @property
    def above(self) -> bool:
        return self.p_value < ALPHA

    def text(self) -> str:
        call = "above chance" if self.above else "not distinguishable from chance"
        return f"chance {100 * self.chance:.1f}%, binomial p = {self.p_value:.2g} on {self.total} test videos: {call}"


def chance_level(largest: Any, total: Any) -> Any:
    """THE chance level: the share of the largest class among the test videos, what always answering that class
    scores. Vectorised: the dashboard applies it to every run's (largest, total) support counts at once."""
    return np.asarray(largest, dtype=np.float64) / np.asarray(total, dtype=np.float64)


def chance_accuracy(supports: Sequence[int]) -> float:
    """The chance level of one run from its test supports per class."""
    return float(chance_level(max(supports), sum(supports)))


def above_chance_p(correct: Any, total: Any, chance: Any) -> Any:
    """One-sided exact binomial p-value of `correct` right out of `total` at accuracy `chance` (vectorised)."""
    return scipy_stats.binom.sf(np.asarray(correct) - 1, total, chance)


def chance_test(correct: int, total: int, supports: Sequence[int]) -> ChanceTest:
    chance = chance_accuracy(supports)
    return ChanceTest(chance=chance, correct=correct, total=total,
                      p_value=float(above_chance_p(correct, total, chance)))


def run_chance_test(run: dict[str, Any], class_metrics: pd.DataFrame) -> ChanceTest | None:
    """The chance test of a successful run, from its row and its test per-class supports."""
    test = class_metrics[class_metrics["split"] == "test"] if not class_metrics.empty else class_metrics
    if run.get("status") != "success" or test.empty or run.get("test_acc") is None:
        return None
    supports = [int(s) for s in test["support"]]
    total = sum(supports)
    return chance_test(round(run["test_acc"] * total), total, supports)
