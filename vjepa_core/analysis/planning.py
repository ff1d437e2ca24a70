"""How many test videos and seeds a question needs, and how often its validation set picks the truly best.

The verdict calls two configurations tied when its exact paired test cannot tell them apart, and states the
smallest difference its test set could detect. The planner asks the same power function
(`paired.mcnemar_power`: exact McNemar, 80% power, alpha / m for m comparisons, Holm's strictest step) the
other way round: the test videos a difference needs, given how often two configurations disagree on a video.

Seeds. A video's disagreement has two parts: one the seeds share (the configurations differ on that video
whatever the seed) and one that changes from seed to seed. The verdict's sign-flip test averages each video
over m seed pairs, which shrinks only the second part: the disagreement left is psi * (1 - s) + psi * s / m
for a share s of seed noise. One seed needs the exact McNemar test's videos at psi; m seeds scale that count
by the ratio of Connor's normal approximations at the two disagreements (the sign-flip test is a z-test at
these sizes, and one seed stays exact). s is measured where a
question has two or more seed pairs (the cross-seed products of each video's disagreements); otherwise it is
stated, or unknown, and then the planner gives the range from s = 0 (seeds buy nothing) to s = 1.

Validation. The winner is the configuration with the most right validation answers. For two configurations
the probability that the truly better one (by `gap`) comes out on top, alone or tied, has a closed form (the
discordant videos binomial, their split binomial). For more there is none: the planner simulates m + 1
configurations whose answers on a video are correlated through a shared normal latent (a probit model whose
correlation gives the stated disagreement between the best and each other), the others `gap` below the best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

from vjepa_core.analysis.paired import POWER, PairedTest, mcnemar_power, min_detectable_difference
from vjepa_core.analysis.plan_defaults import ACCURACY, DIFFERENCES, DRAWS, SEEDS
from vjepa_core.analysis.stats import ALPHA


def videos_needed(difference: float, disagreement: float, *, comparisons: int = 1, power: float = POWER,
                  alpha: float = ALPHA, limit: int = 1_000_000) -> int | None:
    """The test videos at which the exact McNemar test reaches `power` for `difference` at alpha / comparisons
    (None: not within `limit`). Found by doubling then bisection: the exact test's power saw-tooths by a point
    or so as videos are added, so this is where it crosses `power`, not a guarantee for every larger size."""
    level = alpha / max(1, comparisons)

    def enough(videos: int) -> bool:
        return mcnemar_power(videos, disagreement, difference, alpha=level) >= power

    low, high = 0, 8  # low: not enough (0 videos never are)
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(limit, high * 2)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def seeded_disagreement(disagreement: float, seeds: int, seed_noise: float) -> float:
    """The disagreement the sign-flip test sees when each video is averaged over `seeds` seed pairs."""
    return disagreement * (1 - seed_noise) + disagreement * seed_noise / seeds


def measured_seed_noise(tests: Sequence[PairedTest]) -> float | None:
    """The share of disagreement that changes from seed to seed, pooled over the `tests` with two or more seed
    pairs (None: none has). For video j with per-seed disagreements x_js in {-1, 0, 1}, the products x_js * x_jt
    of two different seeds estimate the part the seeds share, sum(x_js^2) the whole."""
    shared = total = 0.0
    for test in tests:
        m = test.seed_pairs
        if m < 2:
            continue
        sums = np.asarray(test.per_video, dtype=np.float64)
        squares = np.asarray(test.per_video_discordant, dtype=np.float64)
        shared += float((sums**2 - squares).sum()) / (m * (m - 1))
        total += float(squares.sum()) / m
    if total == 0:
        return None
    return float(min(1.0, max(0.0, 1 - shared / total)))


@dataclass(frozen=True)
class ValidationChoice:
    alone: float      # P(the truly best has the most right validation answers, alone)
    tied: float       # P(it shares the top with another: the tie rule then takes the cheaper)
    method: str       # "exact" or "simulated (N draws, seed S)"


def validation_choice(videos: int, gap: float, disagreement: float, *, comparisons: int = 1,
                      accuracy: float = ACCURACY, draws: int = DRAWS, seed: int = 0) -> ValidationChoice:
    """How often `videos` validation videos put the truly best of `comparisons + 1` configurations on top when it
    is `gap` ahead of each other and disagrees with each on a share `disagreement` (see the module doc)."""
    rate = min(1.0, max(disagreement, gap))
    if comparisons <= 1:
        discordant = np.arange(videos + 1)
        weights = scipy_stats.binom.pmf(discordant, videos, rate)
        favoured = 0.5 * (1 + gap / rate) if rate > 0 else 0.5
        ahead = scipy_stats.binom.sf(discordant // 2, discordant, favoured)
        even = np.where(discordant % 2 == 0, scipy_stats.binom.pmf(discordant // 2, discordant, favoured), 0.0)
        return ValidationChoice(float(weights @ ahead), float(weights @ even), "exact")
    return _simulated_choice(videos, gap, rate, comparisons=comparisons, accuracy=accuracy, draws=draws, seed=seed)


def _simulated_choice(videos: int, gap: float, rate: float, *, comparisons: int, accuracy: float, draws: int,
                      seed: int) -> ValidationChoice:
    best, other = min(accuracy, 0.999), max(min(accuracy, 0.999) - gap, 0.001)
    thresholds = scipy_stats.norm.ppf([best] + [other] * comparisons)
    rho = _latent_correlation(best, other, rate)
    rng = np.random.default_rng(seed)
    alone = tied = 0
    chunk = max(1, 4_000_000 // (videos * (comparisons + 1)))
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        latent = (math.sqrt(rho) * rng.standard_normal((size, videos, 1))
                  + math.sqrt(1 - rho) * rng.standard_normal((size, videos, comparisons + 1)))
        right = (latent < thresholds).sum(axis=1)
        top = right[:, 1:].max(axis=1)
        alone += int((right[:, 0] > top).sum())
        tied += int((right[:, 0] == top).sum())
    return ValidationChoice(alone / draws, tied / draws, f"simulated ({draws:,} draws, seed {seed})")


def _latent_correlation(best: float, other: float, rate: float) -> float:
    """The latent correlation at which a configuration right with probability `best` and one right with
    `other` disagree on a share `rate` of videos (clipped to [0, 1): a one-factor model cannot go below 0)."""
    z_best, z_other = scipy_stats.norm.ppf([best, other])

    def disagreement(rho: float) -> float:
        both = scipy_stats.multivariate_normal.cdf([z_best, z_other], cov=[[1, rho], [rho, 1]])
        return best + other - 2 * float(both) - rate

    if disagreement(0.0) <= 0:
        return 0.0
    if disagreement(0.9999) >= 0:
        return 0.9999
    return float(optimize.brentq(disagreement, 0.0, 0.9999, xtol=1e-6))


def detectable_curve(disagreement: float, comparisons: int, sizes: Sequence[int]) -> list[float | None]:
    """The verdict's minimum detectable difference at each test-set size (None where nothing is detectable)."""
    level = ALPHA / max(1, comparisons)
    return [min_detectable_difference(int(n), disagreement, alpha=level, tolerance=5e-4) for n in sizes]


@dataclass(frozen=True)
class Assumptions:
    """What a question's plan rests on, and where each figure came from."""

    question: str
    comparisons: int
    disagreement: float
    disagreement_from: str
    seed_noise: float | None          # None: unknown (one seed per configuration, nothing stated)
    seed_noise_from: str
    test_videos: int | None = None    # the study's test set now (None: a stated plan)
    val_videos: int | None = None
    accuracy: float = ACCURACY
    accuracy_from: str = "assumed"


def plan(given: Assumptions, *, differences: Sequence[float] = DIFFERENCES, seeds: Sequence[int] = SEEDS,
         draws: int = DRAWS) -> dict[str, Any]:
    """The plan of one question as a JSON-ready dict (`runner plan --json` holds a list of them)."""
    alpha = ALPHA / max(1, given.comparisons)
    now = None if not given.test_videos else min_detectable_difference(given.test_videos, given.disagreement,
                                                                         alpha=alpha)
    rows = []
    for difference in differences:
        one_seed = videos_needed(difference, given.disagreement, comparisons=given.comparisons)
        by_seeds = [_seeds_row(difference, given, m) for m in seeds]
        val_videos = given.val_videos or one_seed
        choice = None if not val_videos else validation_choice(
            val_videos, difference, given.disagreement, comparisons=given.comparisons, accuracy=given.accuracy,
            draws=draws)
        rows.append({"difference": difference, "test_videos_needed": one_seed, "seeds": by_seeds,
                     "validation": None if choice is None else {
                         "val_videos": val_videos, "val_videos_from": "the study" if given.val_videos else
                         "as many as the test videos needed", "p_best_alone": choice.alone,
                         "p_best_tied": choice.tied, "method": choice.method}})
    return {**vars(given), "alpha": alpha, "power": POWER, "min_detectable_difference": now, "differences": rows}


def _seeds_row(difference: float, given: Assumptions, seeds: int) -> dict[str, Any]:
    one_seed = videos_needed(difference, given.disagreement, comparisons=given.comparisons)

    def needed(noise: float) -> int | None:
        if one_seed is None:
            return None
        left = seeded_disagreement(given.disagreement, seeds, noise)
        ratio = (normal_videos(difference, left, comparisons=given.comparisons)
                 / normal_videos(difference, given.disagreement, comparisons=given.comparisons))
        return max(1, math.ceil(one_seed * ratio))

    if given.seed_noise is not None or seeds == 1:
        return {"seeds": seeds, "test_videos": needed(given.seed_noise or 0.0), "range": None}
    return {"seeds": seeds, "test_videos": None, "range": [needed(1.0), needed(0.0)]}  # all seed noise .. none


def normal_videos(difference: float, disagreement: float, *, comparisons: int = 1, power: float = POWER,
                  alpha: float = ALPHA) -> float:
    """Connor's normal approximation of the paired test's sample size, (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2:
    psi is the mean squared per-video difference (the disagreement, or what averaging seeds leaves of it)."""
    z_alpha = scipy_stats.norm.ppf(1 - alpha / max(1, comparisons) / 2)
    z_power = scipy_stats.norm.ppf(power)
    psi = max(disagreement, difference**2)
    return float((z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - difference**2)) ** 2 / difference**2)
