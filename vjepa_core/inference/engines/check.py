"""Does an engine keep the answers? Its outputs against fp32's on the clips that are the evidence.

`Evidence` is the clips [N, T, 3, crop, crop] an engine is checked on, with fp32's outputs on them (computed once):
- `views`: for a trained run, the evaluation views of its validation videos (`vjepa_core.inference.run_views`
  reads them from the warehouse): the videos the model is for. A classifier passes when top-1 is the same on at
  least `TOP1_TOLERANCE` of the views and no probability moves more than `VIEW_LIMIT`.
- `probes`: for a bare model folder, `PROBES` synthetic videos of moving shapes rendered at the model's clip
  shape and preprocessed as evaluation views are. A classifier passes when no clip's probabilities move more
  than `PROBE_LIMIT` and neither could any clip with the same logit errors: softmax moves a probability by at
  most a quarter of the spread of the logits' changes, to first order (`prob_bound`). The bound is the largest
  of `PROBES` clips: a further clip like them exceeds it with probability at most 1 / (PROBES + 1) (the rank of
  exchangeable draws), 5%. Real videos moved probabilities further than probes did, hence the margin below.
For the `encoder` part (tokens [B, N, D]) both compare the relative error ||candidate - reference|| / ||reference||
over all tokens with `TOKEN_TOLERANCE`, and report the lowest cosine similarity of a clip's mean-pooled vectors
(the vectors `runner embed` writes). The margins are measured: docs/benchmarks/engines.md.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vjepa_core.data.synthetic import SYNTHETIC_CLASSES, render_video
from vjepa_core.data.transforms import eval_views, resize_size
from vjepa_core.inference.engines.base import Runner
from vjepa_core.inference.engines.eager import FP32

PROB_TOLERANCE = 0.02  # the promise: a video's probabilities within 0.02 of fp32's
TOP1_TOLERANCE = 0.98  # the promise: the same top-1 label on at least 98% of the videos
VIEW_MARGIN = 1.25  # a run's test videos against its validation views (measured: the benchmarks page)
VIEW_LIMIT = PROB_TOLERANCE / VIEW_MARGIN
PROBE_MARGIN = 2.5  # real videos move further than synthetic probes (measured: the benchmarks page)
PROBE_LIMIT = PROB_TOLERANCE / PROBE_MARGIN
TOKEN_TOLERANCE = 0.05  # relative error of the tokens, small enough that pooled vectors keep their neighbours
PROBES = 19
PROBE_SEED = 7
VIEWS, PROBE_CLIPS = "views", "probes"  # the two kinds of evidence


@dataclass(frozen=True)
class Agreement:
    """An engine's outputs against fp32's on one evidence: the figures, the limit applied and the verdict."""

    part: str
    evidence: str  # what the clips were, e.g. "54 views of the validation videos of run 1a2b3c"
    kind: str
    clips: int
    passed: bool
    limit: float
    max_prob_diff: float | None = None
    p99_prob_diff: float | None = None
    top1_agreement: float | None = None
    prob_bound: float | None = None
    token_error: float | None = None
    min_cosine: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def excess(self) -> float:
        """How far over its limits the engine is (<= 1 passes): the largest figure over its limit."""
        if self.part != "classifier":
            return _ratio(self.token_error, self.limit)
        top1 = _ratio(1 - (self.top1_agreement or 0.0), 1 - TOP1_TOLERANCE) if self.kind == VIEWS else 0.0
        measured = self.max_prob_diff if self.kind == VIEWS else max(self.max_prob_diff or 0.0, self.prob_bound or 0.0)
        return max(_ratio(measured, self.limit), top1)

    def describe(self) -> str:
        if self.part != "classifier":
            return (f"token error {self.token_error:.4f} (tolerance {self.limit}), mean-vector cosine >= "
                    f"{self.min_cosine:.5f} on {self.evidence}")
        if self.kind == VIEWS:
            return (f"top-1 the same on {self.top1_agreement:.1%}, max |prob diff| {self.max_prob_diff:.4f}, 99th "
                    f"percentile {self.p99_prob_diff:.4f} on {self.evidence} (limits {TOP1_TOLERANCE:.0%}, "
                    f"{self.limit:g})")
        return (f"max |prob diff| {self.max_prob_diff:.4f}, bound from the logit errors {self.prob_bound:.4f} on "
                f"{self.evidence} (limit {self.limit:g})")


def _ratio(value: float | None, limit: float) -> float:
    return math.inf if value is None or not math.isfinite(value) else value / limit


class Evidence:
    """The clips engines are checked on, and fp32's outputs on them per model part: both made when first asked
    (an engine read from the cache needs neither)."""

    def __init__(self, kind: str, source: str, identity: str, load: Callable[[], torch.Tensor]) -> None:
        self.kind = kind
        self.source = source  # for people: what the clips are
        self.identity = identity  # for the engine key: the same identity means the same clips
        self._load = load
        self._outputs: dict[str, torch.Tensor] = {}

    @functools.cached_property
    def clips(self) -> torch.Tensor:
        return self._load()

    def reference(self, part: str, module: torch.nn.Module, bar: Any = None) -> torch.Tensor:
        if part not in self._outputs:
            show_step(bar, f"fp32 on {self.source}")
            self._outputs[part] = run_batched(FP32.build(module, self.clips), self.clips, bar=bar)
        return self._outputs[part]

    def check(self, part: str, module: torch.nn.Module, runner: Runner,
              bar: Any = None) -> tuple[Agreement, torch.Tensor]:
        """`runner`'s agreement with fp32 on every clip, and each clip's error (`clip_errors`). `bar` (a
        `progress_bar`) counts the clips run."""
        reference = self.reference(part, module, bar)
        show_step(bar, f"check on {self.source}")
        candidate = run_batched(runner, self.clips, bar=bar)
        return agreement(part, reference, candidate, evidence=self), clip_errors(part, reference, candidate)


def probe_evidence(frames: int, crop: int) -> Evidence:
    return Evidence(PROBE_CLIPS, f"{PROBES} synthetic probe clips", f"probes:{PROBES}:{PROBE_SEED}",
                    lambda: synthetic_clips(frames, crop, count=PROBES, seed=PROBE_SEED))


def view_evidence(load: Callable[[], torch.Tensor], *, run_id: str, videos: Sequence[str], views: int) -> Evidence:
    """The evaluation views (`load()` -> [views, T, 3, crop, crop]) of the validation `videos` of run `run_id`."""
    digest = hashlib.sha256("\n".join([run_id, str(views), *videos]).encode()).hexdigest()[:16]
    return Evidence(VIEWS, f"{views} views of {len(videos)} validation videos of run {run_id}", f"views:{digest}",
                    load)


def synthetic_clips(frames: int, crop: int, *, classes: Sequence[str] = SYNTHETIC_CLASSES, count: int | None = None,
                    seed: int = 0) -> torch.Tensor:
    """`count` (default: one per class) preprocessed clips [count, frames, 3, crop, crop] of the built-in synthetic
    motions, cycling through `classes`, rendered in memory at 4:3 and the model's evaluation resize."""
    height = resize_size(crop)
    params = {"seed": seed, "height": _even(height), "width": _even(height * 4 / 3), "num_frames": frames,
              "noise": 0.03, "texture": 0.1}
    count = len(classes) if count is None else count
    return torch.stack([eval_views(render_video(classes[i % len(classes)], i // len(classes), params), crop)[0]
                        for i in range(count)])


def _even(value: float) -> int:
    return int(math.ceil(value / 2) * 2)


def agreement(part: str, reference: torch.Tensor, candidate: torch.Tensor, *, evidence: Evidence) -> Agreement:
    """How close `candidate` is to `reference` (the same clips through fp32); see the module docstring."""
    reference, candidate = reference.float(), candidate.float()
    common = {"part": part, "evidence": evidence.source, "kind": evidence.kind, "clips": len(reference)}
    if part != "classifier":
        norm = torch.linalg.vector_norm
        finite = candidate.shape == reference.shape and bool(torch.isfinite(candidate).all())
        error = float(norm(candidate - reference) / norm(reference).clamp_min(1e-12)) if finite else math.inf
        cosine = (float(torch.nn.functional.cosine_similarity(candidate.mean(1), reference.mean(1), dim=-1).min())
                  if finite else -1.0)
        return Agreement(**common, passed=error <= TOKEN_TOLERANCE, limit=TOKEN_TOLERANCE, token_error=error,
                         min_cosine=cosine)
    limit = VIEW_LIMIT if evidence.kind == VIEWS else PROBE_LIMIT
    if candidate.shape != reference.shape or not torch.isfinite(candidate).all():
        return Agreement(**common, passed=False, limit=limit, max_prob_diff=math.inf, p99_prob_diff=math.inf,
                         top1_agreement=0.0, prob_bound=math.inf)
    ref, cand = torch.softmax(reference, dim=-1), torch.softmax(candidate, dim=-1)
    per_clip = (ref - cand).abs().amax(-1).numpy()
    top1 = int((ref.argmax(-1) == cand.argmax(-1)).sum()) / len(ref)
    bound = float(clip_errors(part, reference, candidate).max())
    figures = {"max_prob_diff": float(per_clip.max()), "p99_prob_diff": float(np.percentile(per_clip, 99)),
               "top1_agreement": top1, "prob_bound": bound}
    measured = figures["max_prob_diff"] if evidence.kind == VIEWS else max(figures["max_prob_diff"], bound)
    passed = measured <= limit and (evidence.kind != VIEWS or top1 >= TOP1_TOLERANCE)
    return Agreement(**common, passed=passed, limit=limit, **figures)


def clip_errors(part: str, reference: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Per clip [N]: the classifier's bound on its probability change from the logit errors (a quarter of their
    spread), or the encoder's relative token error."""
    moved = candidate.float() - reference.float()
    if not torch.isfinite(moved).all():
        return torch.full((len(reference),), math.inf)
    if part == "classifier":
        return (moved.amax(-1) - moved.amin(-1)) / 4
    norm = torch.linalg.vector_norm
    return norm(moved.flatten(1), dim=1) / norm(reference.float().flatten(1), dim=1).clamp_min(1e-12)


def run_batched(runner: Any, clips: torch.Tensor, batch: int = 2, *, bar: Any = None) -> torch.Tensor:
    """`runner` over `clips` in batches of `batch` (2: the engine's batch axis is exercised, memory stays low);
    `bar` (a `progress_bar`) counts the clips."""
    outputs = []
    for start in range(0, len(clips), batch):
        outputs.append(runner(clips[start:start + batch]))
        if bar is not None:
            bar.update(len(outputs[-1]))
    return torch.cat(outputs)


def show_step(bar: Any, step: str) -> None:
    """What an engine's preparation is doing, on its progress line."""
    if bar is not None:
        bar.set_postfix(step=step)

