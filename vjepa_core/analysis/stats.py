"""Is a difference real? Seed statistics and paired tests on the shared test videos.

- `summarize(values)`: mean, sample std, n and a 95% Student-t interval of the mean (over seeds).
- `accuracy_summary(accs, videos)`: the same over seeds, or with one seed a Wilson interval over its videos.
- `compare_predictions(a, b)`: two runs' per-video predictions (DataFrames with `video` and
  `correct` columns) joined on the videos both scored; a paired bootstrap interval of the accuracy
  difference (b - a) and McNemar's exact test on the discordant videos.
- `compare_runs(store, run_a, run_b)`: the same, read from a warehouse the caller opened.
- `chance_test(correct, total, supports)`: is one run's test accuracy above chance, the score of always
  answering the largest test class (1/K on a balanced set)? A one-sided exact binomial test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from vjepa_core.errors import UserError

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


@dataclass(frozen=True)
class PairedComparison:
    n_shared: int
    acc_a: float
    acc_b: float
    diff: float  # acc_b - acc_a
    ci_low: float
    ci_high: float
    mcnemar_p: float
    only_a_correct: int
    only_b_correct: int
    significant: bool

    def verdict(self, name_a: str = "A", name_b: str = "B") -> str:
        points = 100 * self.diff
        call = "a real difference" if self.significant else "within noise"
        return (f"{name_b} vs {name_a}: {points:+.1f} points on {self.n_shared} shared videos, "
                f"95% CI [{100 * self.ci_low:+.1f}, {100 * self.ci_high:+.1f}], "
                f"McNemar p = {self.mcnemar_p:.3g}: {call}")

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(scipy_stats.binomtest(min(only_a, only_b), discordant, 0.5).pvalue)


def compare_predictions(pred_a: pd.DataFrame, pred_b: pd.DataFrame, *, n_boot: int = 2000,
                        seed: int = 0) -> PairedComparison:
    """Paired comparison on the videos both runs predicted (joined on `video`)."""
    joined = pred_a[["video", "correct"]].merge(pred_b[["video", "correct"]], on="video", suffixes=("_a", "_b"))
    if joined.empty:
        raise UserError("compare: the two runs share no scored videos (different datasets or splits?)")
    a = joined["correct_a"].to_numpy(dtype=np.float64)
    b = joined["correct_b"].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = (b[samples] - a[samples]).mean(axis=1)
    ci_low, ci_high = np.quantile(boot, [ALPHA / 2, 1 - ALPHA / 2])
    only_a = int(((a == 1) & (b == 0)).sum())
    only_b = int(((a == 0) & (b == 1)).sum())
    p_value = mcnemar_exact(only_a, only_b)
    return PairedComparison(
        n_shared=len(a), acc_a=float(a.mean()), acc_b=float(b.mean()), diff=float(b.mean() - a.mean()),
        ci_low=float(ci_low), ci_high=float(ci_high), mcnemar_p=p_value, only_a_correct=only_a,
        only_b_correct=only_b, significant=p_value < ALPHA,
    )


class RunReader(Protocol):
    """What `compare_runs` reads runs from: a `vjepa_core.store.warehouse.Warehouse`, which the caller opens
    (the analysis sits below the store and never opens one itself)."""

    path: Path

    def get_run(self, run_id_or_prefix: str) -> dict[str, Any] | None: ...

    def table(self, name: str, run_id: str | None = None) -> pd.DataFrame: ...


def compare_runs(store: RunReader, run_a: str, run_b: str, *, split: str = "test",
                 n_boot: int = 2000) -> PairedComparison:
    """`compare_predictions` of two runs of `store` on `split`; a UserError when either has no predictions."""
    frames = []
    for run_id in (run_a, run_b):
        run = store.get_run(run_id)
        if run is None:
            raise UserError(f"compare: run {run_id!r} is not in {store.path}")
        predictions = store.table("predictions", run["run_id"])
        predictions = predictions[predictions["split"] == split]
        if predictions.empty:
            raise UserError(f"compare: run {run['run_id']} has no {split} predictions (status {run['status']})")
        frames.append(predictions)
    return compare_predictions(frames[0], frames[1], n_boot=n_boot)
