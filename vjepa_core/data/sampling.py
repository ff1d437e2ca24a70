"""Which frames make a clip: pure numpy, no I/O.

In:  a video's frame count, the clip length `frames_per_clip` and the gap `stride` between
     sampled frames (a clip spans (frames_per_clip - 1) * stride + 1 frames).
Out: int64 frame indices, shape [frames_per_clip], each in [0, num_frames - 1].

A video shorter than the span keeps the stride and repeats its last frame (indices clamp to
num_frames - 1), so the clip's speed of motion is the same for every video.
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
