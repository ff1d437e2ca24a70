"""Does an engine keep the answers? Its outputs against fp32's on the same probe clips.

`probe_clips(frames, crop)` -> float32 [PROBES, T, 3, crop, crop]: synthetic videos of moving shapes (one per
motion class of the built-in set), rendered in memory at the model's clip shape and preprocessed exactly as
evaluation views are (resize, centre crop, ImageNet normalisation): inputs that look like video, not noise.

`agreement(part, reference, candidate)` compares two outputs of the same clips:
- `classifier` (logits [B, labels]): the largest |probability difference| over every clip and label, the
  share of clips whose top-1 label is the same, and `prob_bound`, the largest probability change any clip
  could see with the same logit errors: softmax moves a probability by at most half the largest logit change
  (shifting all logits alike changes nothing), so |dp| <= (max dz - min dz) / 4 to first order. It passes
  when both the measured difference and the bound are at most `CHECK_LIMIT`, `PROB_TOLERANCE` (what the
  answers on real videos must keep) over `CHECK_MARGIN`. Both matter: a few probes rarely sit near a decision
  boundary, where probabilities move most, and real videos move the logits further than the probes do.
- `encoder` (tokens [B, N, D]): the relative error ||candidate - reference|| / ||reference|| over all tokens
  and the lowest cosine similarity of a clip's mean-pooled vectors (the vectors `runner embed` writes). It
  passes when the relative error is at most `TOKEN_TOLERANCE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vjepa_core.data.synthetic import SYNTHETIC_CLASSES, render_video
from vjepa_core.data.transforms import eval_views, resize_size

PROB_TOLERANCE = 0.02  # the issue's bound for trained checkpoints: probabilities within 0.02 of fp32's
# Real videos' probability changes were up to 2.3x the probes' bound (trained tiny-jepa checkpoints, int8 engines,
# 54 test videos each: bound 0.0153 -> 0.0346 measured (full, ort-int8), 0.0146 -> 0.0280 (full, openvino-int8),
# 0.0177 -> 0.0305 (lora, openvino-int8), 0.0151 -> 0.0111 (head, openvino-int8)); the check keeps that margin.
# With ort-int8's later recipe (the encoder in 8-bit blocks, the head fp32) the ratio reached 9.5x on small figures
# (pooler_head_lora: bound 0.0020 -> 0.0189), within 0.02 all the same: the probes rank engines more than bound them.
CHECK_MARGIN = 2.5
CHECK_LIMIT = PROB_TOLERANCE / CHECK_MARGIN
TOKEN_TOLERANCE = 0.05  # 5% relative error of the tokens; the mean-pooled vectors are then > 0.999 cosine
PROBE_CLASSES = ("up", "left", "wave", "still")
PROBE_SEED = 7


@dataclass(frozen=True)
class Agreement:
    part: str
    probes: int
    passed: bool
    max_prob_diff: float | None = None
    top1_agreement: float | None = None
    prob_bound: float | None = None
    token_error: float | None = None
    min_cosine: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.part == "classifier":
            return (f"max |prob diff| {self.max_prob_diff:.4f}, bound from the logit errors {self.prob_bound:.4f} "
                    f"(limit {CHECK_LIMIT:.3f} on probes, for {PROB_TOLERANCE} on videos), top-1 agreement "
                    f"{self.top1_agreement:.0%} on {self.probes} probe clips")
        return (f"token error {self.token_error:.4f} (tolerance {TOKEN_TOLERANCE}), mean-vector cosine >= "
                f"{self.min_cosine:.5f} on {self.probes} probe clips")


def probe_clips(frames: int, crop: int) -> torch.Tensor:
    """Preprocessed synthetic clips [len(PROBE_CLASSES), frames, 3, crop, crop] for a model of this clip shape."""
    return synthetic_clips(frames, crop, classes=PROBE_CLASSES, seed=PROBE_SEED)


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


def agreement(part: str, reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    """How close `candidate` is to `reference` (the same clips through fp32); see the module docstring."""
    reference, candidate = reference.float(), candidate.float()
    if candidate.shape != reference.shape or not torch.isfinite(candidate).all():
        return Agreement(part, len(reference), passed=False, max_prob_diff=math.inf, top1_agreement=0.0,
                         prob_bound=math.inf, token_error=math.inf, min_cosine=-1.0)
    if part == "classifier":
        ref, cand = torch.softmax(reference, dim=-1), torch.softmax(candidate, dim=-1)
        diff = float((ref - cand).abs().max())
        top1 = float((ref.argmax(-1) == cand.argmax(-1)).float().mean())
        moved = candidate - reference
        bound = float((moved.max(-1).values - moved.min(-1).values).max() / 4)
        return Agreement(part, len(reference), passed=max(diff, bound) <= CHECK_LIMIT, max_prob_diff=diff,
                         top1_agreement=top1, prob_bound=bound)
    norm = torch.linalg.vector_norm
    error = float(norm(candidate - reference) / norm(reference).clamp_min(1e-12))
    cosine = float(torch.nn.functional.cosine_similarity(candidate.mean(1), reference.mean(1), dim=-1).min())
    return Agreement(part, len(reference), passed=error <= TOKEN_TOLERANCE, token_error=error, min_cosine=cosine)


def run_batched(runner: Any, clips: torch.Tensor, batch: int = 2) -> torch.Tensor:
    """`runner` over `clips` in batches of `batch` (2: the engine's batch axis is exercised, memory stays low)."""
    return torch.cat([runner(clips[i:i + batch]) for i in range(0, len(clips), batch)])


def top1_margin(logits: torch.Tensor) -> np.ndarray:
    """Per clip: the best probability minus the second best (how close a top-1 is to flipping)."""
    probs = torch.softmax(logits.float(), dim=-1)
    best = probs.topk(min(2, probs.shape[-1]), dim=-1).values
    return (best[:, 0] - (best[:, 1] if best.shape[1] > 1 else 0)).numpy()
