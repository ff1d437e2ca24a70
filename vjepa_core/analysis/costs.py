"""What a configuration costs, and which of several equally good ones is cheapest.

Two choices in a verdict are about cost, never about the test set: a tie on validation goes to the cheaper
configuration to train (fewer trainable parameters, then less training time), and among the winner and the
configurations statistically tied with it the *deployment pick* is the cheapest to run (fewer trainable
parameters, then a smaller release, then fewer CPU milliseconds per clip where they were measured on a CPU).
In: a configuration's successful `runs` rows (trainable_params, train_seconds, release_bytes, inference_ms,
device). Out: `Costs` and the choice among them, with the figure that decided it. No torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vjepa_core.analysis.configurations import spec_dict

TIE_BREAK = ("equal mean validation accuracies go to the cheaper configuration to train: fewer trainable "
             "parameters, then less training time (its own training loop, mean over seeds), then the lower "
             "configuration id; never to the test set")
# A batch-1 latency over a few clips on a shared machine is not exact: closer than this counts as equal.
MS_TOLERANCE = 0.1
# What one clip's inference computes, besides the release's weights: equal in these, two configurations run the
# same network on the same input, and their measured milliseconds differ by noise only.
WORKLOAD_FIELDS = ("frames_per_clip", "feature_layers", "pooler_layers")
DEPLOYMENT_RULE = ("the cheapest of the validation winner and every configuration statistically tied with it on "
                   "test: fewest trainable parameters, then the smallest release (fp32 weights, LoRA merged), then "
                   "the fewest CPU ms per clip where measured on a CPU and where the configurations compute different "
                   f"things (frames per clip, feature layers, pooler depth; within {MS_TOLERANCE:.0%} counts as "
                   "equal); what stays equal stays with the winner")


@dataclass(frozen=True)
class Costs:
    trainable_params: float        # median over seeds (NaN: not recorded)
    train_seconds: float           # mean over seeds of the run's own training loop (`fit_seconds`), not the model
    #                                load or the token cache a group's first run fills for all (else its whole time)
    release_bytes: float           # median over seeds (NaN: a run recorded before releases were sized)
    cpu_ms: float                  # mean ms per clip at batch 1, over the seeds measured on a CPU (NaN: none)
    workload: str = ""             # what one clip's inference computes (`WORKLOAD_FIELDS` and the release size)


def costs_of(runs: pd.DataFrame) -> Costs:
    """The costs of one configuration from its successful runs' rows."""
    def column(name: str) -> pd.Series:
        if name not in runs:
            return pd.Series(dtype="float64")
        return pd.to_numeric(runs[name], errors="coerce").astype("float64")  # nullable NA -> NaN

    on_cpu = runs["device"].astype(str).eq("cpu") if "device" in runs else pd.Series(False, index=runs.index)
    release = float(column("release_bytes").median())
    spec = spec_dict(runs["spec"].iloc[0]) if "spec" in runs and len(runs) else {}
    workload = json.dumps([release, *(spec.get(name) for name in WORKLOAD_FIELDS)], default=str)
    fit = float(column("fit_seconds").mean())
    return Costs(trainable_params=float(column("trainable_params").median()),
                 train_seconds=fit if not math.isnan(fit) else float(column("train_seconds").mean()),
                 release_bytes=release,
                 cpu_ms=float(column("inference_ms")[on_cpu].mean()) if on_cpu.any() else math.nan,
                 workload=workload)


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
    """The position of the deployment pick among `candidates` (the winner first) and the figures that took part:
    in `FIGURES` order, each known for every candidate narrows the field to its cheapest (see `DEPLOYMENT_RULE`).
    Milliseconds compare workloads, each the mean over the candidates that share it: between configurations that
    compute the same thing a measured difference is noise, never a reason."""
    field = list(range(len(candidates)))
    compared = []
    for name in FIGURES:
        if any(math.isnan(getattr(costs, name)) for costs in candidates):
            continue
        if name == "cpu_ms":
            workloads = {candidates[i].workload for i in field}
            if len(workloads) < 2:
                continue
            means = {w: float(np.mean([candidates[i].cpu_ms for i in field if candidates[i].workload == w]))
                     for w in workloads}
            fastest = min(means.values())
            field = [i for i in field if means[candidates[i].workload] <= fastest * (1 + MS_TOLERANCE)]
        else:
            best = min(getattr(candidates[i], name) for i in field)
            field = [i for i in field if getattr(candidates[i], name) <= best]
        compared.append(name)
    return field[0], tuple(compared)


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
