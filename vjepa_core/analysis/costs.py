"""What a configuration costs, and which of several equally good ones is cheapest.

Two choices in a verdict are about cost, never about the test set: a tie on validation goes to the cheaper
configuration to train (fewer trainable parameters, then less training time), and among the winner and the
configurations statistically tied with it the *deployment pick* is the cheapest to run (fewer trainable
parameters, then a smaller release, then fewer CPU milliseconds per clip where they were measured on a CPU).
In: a configuration's successful `runs` rows (trainable_params, train_seconds, release_bytes, inference_ms,
device). Out: `Costs` and the choice among them, with the figure that decided it. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

TIE_BREAK = ("equal mean validation accuracies go to the cheaper configuration to train: fewer trainable "
             "parameters, then less training time (mean over seeds), then the lower configuration id; never to the "
             "test set")
# A batch-1 latency over a few clips on a shared machine is not exact: closer than this counts as equal.
MS_TOLERANCE = 0.1
DEPLOYMENT_RULE = ("the cheapest of the validation winner and every configuration statistically tied with it on "
                   "test: fewest trainable parameters, then the smallest release (fp32 weights, LoRA merged), then "
                   f"the fewest CPU ms per clip where measured on a CPU (within {MS_TOLERANCE:.0%} counts as equal); "
                   "what stays equal stays with the winner")


@dataclass(frozen=True)
class Costs:
    trainable_params: float        # median over seeds (NaN: not recorded)
    train_seconds: float           # mean over seeds
    release_bytes: float           # median over seeds (NaN: a run recorded before releases were sized)
    cpu_ms: float                  # mean ms per clip at batch 1, over the seeds measured on a CPU (NaN: none)


def costs_of(runs: pd.DataFrame) -> Costs:
    """The costs of one configuration from its successful runs' rows."""
    def column(name: str) -> pd.Series:
        if name not in runs:
            return pd.Series(dtype="float64")
        return pd.to_numeric(runs[name], errors="coerce").astype("float64")  # nullable NA -> NaN

    on_cpu = runs["device"].astype(str).eq("cpu") if "device" in runs else pd.Series(False, index=runs.index)
    return Costs(trainable_params=float(column("trainable_params").median()),
                 train_seconds=float(column("train_seconds").mean()),
                 release_bytes=float(column("release_bytes").median()),
                 cpu_ms=float(column("inference_ms")[on_cpu].mean()) if on_cpu.any() else math.nan)


def training_order(costs: Costs) -> tuple[float, float]:
    """The tie-break's key (see `TIE_BREAK`): unknown figures last."""
    return (_known(costs.trainable_params), _known(costs.train_seconds))


def tie_reason(winner: Costs, other: Costs) -> str:
    """Which figure settled a validation tie between `winner` and `other` (ranked by `training_order`)."""
    if _known(winner.trainable_params) != _known(other.trainable_params):
        return (f"fewer trainable parameters ({_count(winner.trainable_params)} against "
                f"{_count(other.trainable_params)})")
    if _known(winner.train_seconds) != _known(other.train_seconds):
        return f"less training time ({winner.train_seconds:.1f} s against {other.train_seconds:.1f} s)"
    return "the lower configuration id (equal costs)"


FIGURES = ("trainable_params", "release_bytes", "cpu_ms")


def cheapest(candidates: Sequence[Costs]) -> tuple[int, tuple[str, ...]]:
    """The position of the deployment pick among `candidates` (the winner first) and the figures compared: those
    known for every candidate, in `FIGURES` order, each narrowing the field to its cheapest (see
    `DEPLOYMENT_RULE`)."""
    field = list(range(len(candidates)))
    compared = tuple(name for name in FIGURES
                     if all(not math.isnan(getattr(costs, name)) for costs in candidates))
    for name in compared:
        values = {i: getattr(candidates[i], name) for i in field}
        best = min(values.values())
        slack = best * MS_TOLERANCE if name == "cpu_ms" else 0.0
        field = [i for i in field if values[i] <= best + slack]
    return field[0], compared


def figures_text(costs: Costs) -> str:
    """'774 trainable parameters, release 15.9 MB, 12.0 CPU ms per clip' (unknown figures left out)."""
    parts = [f"{_count(costs.trainable_params)} trainable parameters"] if not math.isnan(costs.trainable_params) else []
    if not math.isnan(costs.release_bytes):
        parts.append(f"release {costs.release_bytes / 1e6:.1f} MB")
    if not math.isnan(costs.cpu_ms):
        parts.append(f"{costs.cpu_ms:.1f} CPU ms per clip (measured)")
    return ", ".join(parts) or "no cost recorded"


def _known(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _count(value: float) -> str:
    return "unknown" if math.isnan(value) else f"{int(value):,}"
