"""Two configurations scored on the same test videos: is one better, and what could the test set detect?

- `paired_test(winner, other) -> PairedTest`: takes two boolean arrays `[seeds, videos]` (correct or not;
  row i of each is one pair of seeds, column j the same test video in both) and returns each seed pair's exact
  McNemar p and one p combined over the seeds with `sign_flip_p`.
- `sign_flip_p(differences)`: the exact two-sided paired permutation (sign-flip) test over videos.
  `differences[j]` is video j's count of seeds that only the first configuration got right minus the count
  only the second got right (an integer in [-m, m] for m seed pairs). Under the null hypothesis the two
  configurations are exchangeable on every video, so each video's difference is as likely to carry either
  sign, independently of the other videos; the p-value is P(|sum of randomly signed differences| >=
  |observed sum|). The video is the unit, never the (seed, video) pair: all seeds are scored on the same
  videos, so a hard video's errors repeat across seeds and are not independent evidence. The null
  distribution is computed exactly for any number of videos (a convolution of binomial laws, one per
  distinct |difference|), with no Monte Carlo; with one seed it is exactly the two-sided exact McNemar test.
- `holm(p_values)`: Holm's step-down adjustment, within one question.
- `mcnemar_power(videos, disagreement, difference, alpha=)` and `min_detectable_difference(videos,
  disagreement, alpha=, power=)`: exact power of the two-sided exact McNemar test (reject at p < alpha), with
  the number of discordant videos binomial over the test set and the split of the discordant videos binomial
  given their number; the smallest difference in accuracy reaching the power (bisection; None if no difference
  can, e.g. on a handful of videos). A difference d needs at least d of the videos to disagree, so the
  disagreement rate used is max(observed, d).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from vjepa_core.analysis.stats import ALPHA, mcnemar_exact

POWER = 0.8


@dataclass(frozen=True)
class PairedTest:
    videos: int                       # test videos both configurations were scored on
    seed_pairs: int
    only_first: tuple[int, ...]       # per seed pair: videos only the first configuration got right
    only_second: tuple[int, ...]
    p_per_seed: tuple[float, ...]     # exact McNemar per seed pair
    p: float                          # combined over the seed pairs: the sign-flip test over videos
    difference: float                 # first minus second accuracy, over the seed pairs and shared videos
    disagreement: float               # share of (seed pair, video) cells where exactly one was right


def paired_test(first: np.ndarray, second: np.ndarray) -> PairedTest:
    """Compare two `[seeds, videos]` boolean arrays of right answers (same shape, aligned pairs)."""
    first, second = np.atleast_2d(np.asarray(first, dtype=bool)), np.atleast_2d(np.asarray(second, dtype=bool))
    if first.shape != second.shape or first.size == 0:
        raise ValueError(f"paired_test: expected two equal non-empty [seeds, videos] arrays, got "
                         f"{first.shape} and {second.shape}")
    only_first = (first & ~second).sum(axis=1)
    only_second = (second & ~first).sum(axis=1)
    per_video = (first & ~second).sum(axis=0).astype(np.int64) - (second & ~first).sum(axis=0)
    seeds, videos = first.shape
    return PairedTest(
        videos=videos, seed_pairs=seeds, only_first=tuple(int(n) for n in only_first),
        only_second=tuple(int(n) for n in only_second),
        p_per_seed=tuple(mcnemar_exact(int(a), int(b)) for a, b in zip(only_first, only_second, strict=True)),
        p=sign_flip_p(per_video), difference=float(per_video.sum()) / (seeds * videos),
        disagreement=float((only_first + only_second).sum()) / (seeds * videos))


def sign_flip_p(differences: Sequence[int] | np.ndarray) -> float:
    """Exact two-sided sign-flip p-value of the sum of integer per-video differences (see the module doc)."""
    values = np.asarray(differences)
    if not np.issubdtype(values.dtype, np.integer) and not np.all(values == np.round(values)):
        raise ValueError("sign_flip_p: differences must be integers (counts of seeds)")
    magnitudes = np.abs(values.astype(np.int64))
    magnitudes = magnitudes[magnitudes > 0]
    if magnitudes.size == 0:
        return 1.0
    # T = the sum of the magnitudes that keep a + sign; the signed sum is 2T - total. Videos with the same
    # |difference| a contribute a * Binomial(count, 1/2) to T: one exact kernel per distinct magnitude.
    law = np.ones(1)
    for magnitude, count in zip(*np.unique(magnitudes, return_counts=True), strict=True):
        kernel = np.zeros(int(magnitude) * int(count) + 1)
        kernel[:: int(magnitude)] = scipy_stats.binom.pmf(np.arange(count + 1), count, 0.5)
        law = np.convolve(law, kernel)
    total = int(magnitudes.sum())
    signed = 2 * np.arange(total + 1) - total
    observed = abs(int(values.astype(np.int64).sum()))
    return float(min(1.0, law[np.abs(signed) >= observed].sum()))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in the order given; NaN (an untested comparison) stays NaN and is not counted.

    The step-down: the i-th smallest of m p-values times (m - i), a running maximum, capped at 1. Written here
    rather than called from statsmodels (`multipletests(method="holm")`, which the tests compare it with)
    because statsmodels runs `gc.collect()` on every Holm call, which takes seconds in a process with torch and
    transformers loaded, once per question.
    """
    values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(values.shape, math.nan)
    known = np.flatnonzero(~np.isnan(values))
    order = known[np.argsort(values[known], kind="stable")]
    steps = values[order] * np.arange(len(order), 0, -1)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps)) if len(order) else steps
    return adjusted.tolist()


def _critical_counts(discordant: np.ndarray, alpha: float) -> np.ndarray:
    """Per number of discordant videos k: the largest x with exact McNemar p < alpha when one side has x
    (two-sided p = 2 * P(Binomial(k, 1/2) <= x)), or -1 where no split of k videos can reach alpha."""
    guess = scipy_stats.binom.ppf(alpha / 2, discordant, 0.5)
    below = 2 * scipy_stats.binom.cdf(guess, discordant, 0.5) < alpha
    critical = np.where(below, guess, guess - 1)
    # ppf can land one step high or low at the boundary: step down while the p is not below alpha.
    while True:
        too_high = (critical >= 0) & ~(2 * scipy_stats.binom.cdf(critical, discordant, 0.5) < alpha)
        if not too_high.any():
            return critical.astype(np.int64)
        critical = np.where(too_high, critical - 1, critical)


def mcnemar_power(videos: int, disagreement: float, difference: float, *, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided exact McNemar test on `videos` paired videos when the configurations
    disagree on a share `max(disagreement, difference)` of the videos and differ by `difference` in accuracy."""
    if videos < 1:
        return 0.0
    rate = min(1.0, max(disagreement, abs(difference)))
    if rate <= 0:
        return 0.0
    favoured = 0.5 * (1 + abs(difference) / rate)  # P(the better one is the one right | they disagree)
    discordant = np.arange(videos + 1)
    critical = _critical_counts(discordant, alpha)
    reject = (scipy_stats.binom.cdf(critical, discordant, favoured)
              + scipy_stats.binom.sf(discordant - critical - 1, discordant, favoured))
    reject = np.where(critical >= 0, reject, 0.0)
    return float(np.dot(scipy_stats.binom.pmf(discordant, videos, rate), reject))


def min_detectable_difference(videos: int, disagreement: float, *, alpha: float = ALPHA,
                              power: float = POWER, tolerance: float = 1e-4) -> float | None:
    """The smallest accuracy difference the exact McNemar test detects with `power` (see the module doc)."""
    if mcnemar_power(videos, disagreement, 1.0, alpha=alpha) < power:
        return None
    low, high = 0.0, 1.0
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (low, middle) if mcnemar_power(videos, disagreement, middle, alpha=alpha) >= power \
            else (middle, high)
    return high
