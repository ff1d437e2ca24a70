"""Which frames make a clip: a video's frame count, `frames_per_clip` and the `stride` between sampled frames ->
int64 indices [frames_per_clip] in [0, num_frames - 1]. A video shorter than the clip's span keeps the stride
and repeats its last frame, so that motion has the same speed in every clip. Pure numpy, no I/O.
"""

from __future__ import annotations

import numpy as np


def clip_span(frames_per_clip: int, stride: int) -> int:
    """How many consecutive frames one clip covers."""
    return (frames_per_clip - 1) * stride + 1


def train_clip_indices(num_frames: int, frames_per_clip: int, stride: int,
                       rng: np.random.Generator) -> np.ndarray:
    """A clip at a random temporal offset (uniform over the valid starts), drawn from `rng`."""
    last_start = _last_start(num_frames, frames_per_clip, stride)
    start = int(rng.integers(0, last_start + 1))
    return _clip_at(start, num_frames, frames_per_clip, stride)


def eval_clip_indices(num_frames: int, frames_per_clip: int, stride: int, num_clips: int = 1) -> list[np.ndarray]:
    """`num_clips` deterministic clips, centred in equal parts of the valid starts (one = centred)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    last_start = _last_start(num_frames, frames_per_clip, stride)
    # Centre of the i-th of num_clips equal parts of [0, last_start], in integer arithmetic.
    starts = [((2 * i + 1) * last_start) // (2 * num_clips) for i in range(num_clips)]
    return [_clip_at(start, num_frames, frames_per_clip, stride) for start in starts]


def _last_start(num_frames: int, frames_per_clip: int, stride: int) -> int:
    if num_frames < 1 or frames_per_clip < 1 or stride < 1:
        raise ValueError(f"need num_frames, frames_per_clip and stride >= 1; got {num_frames}, "
                         f"{frames_per_clip}, {stride}")
    return max(0, num_frames - clip_span(frames_per_clip, stride))


def _clip_at(start: int, num_frames: int, frames_per_clip: int, stride: int) -> np.ndarray:
    indices = start + np.arange(frames_per_clip, dtype=np.int64) * stride
    return np.minimum(indices, num_frames - 1)
