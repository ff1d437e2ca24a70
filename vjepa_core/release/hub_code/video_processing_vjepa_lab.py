"""A V-JEPA 2 video processor that samples frames as the run was evaluated (transformers, numpy and the standard
library only), written by vjepa-lab's `runner release` beside the `video_preprocessor_config.json` that names it;
`trust_remote_code=True` loads it, and without it transformers' plain `VJEPA2VideoProcessor` spreads
`num_frames` over the whole video instead. A video (a file, or frames with `do_sample_frames=True`) ->
`pixel_values_videos` [1, frames_per_clip, 3, crop, crop]: the centred clip, `frame_stride` frames apart,
preprocessed exactly as `VJEPA2VideoProcessor` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import VJEPA2VideoProcessor

LOCAL_TYPE = "VJEPA2VideoProcessor"  # what a loader without trust_remote_code builds from the same config


def clip_indices(num_frames: int, frames: int, stride: int, clips: int = 1) -> list[list[int]]:
    """`clips` clips of `frames` frames `stride` apart, centred in equal parts of the valid starts (one: the
    centred clip); a video shorter than a clip repeats its last frame. vjepa-lab's evaluation rule."""
    if min(num_frames, frames, stride, clips) < 1:
        raise ValueError(f"need num_frames, frames, stride and clips >= 1; got {num_frames}, {frames}, {stride}, "
                         f"{clips}")
    last_start = max(0, num_frames - ((frames - 1) * stride + 1))
    starts = [((2 * i + 1) * last_start) // (2 * clips) for i in range(clips)]
    return [[min(start + j * stride, num_frames - 1) for j in range(frames)] for start in starts]


class VJepaLabVideoProcessor(VJEPA2VideoProcessor):
    """`VJEPA2VideoProcessor` whose frame sampling is the evaluation's centred clip."""

    def __init__(self, frames_per_clip: int | None = None, frame_stride: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frames_per_clip = int(frames_per_clip or self.num_frames)
        self.frame_stride = int(frame_stride)

    def evaluation_clips(self, num_frames: int, clips: int = 1) -> list[list[int]]:
        """Frame indices of the evaluation's `clips` clips of a video of `num_frames` frames."""
        return clip_indices(num_frames, self.frames_per_clip, self.frame_stride, clips)

    def sample_frames(self, metadata: Any, num_frames: int | None = None, fps: float | None = None,
                      **kwargs: Any) -> np.ndarray:
        """The centred clip's indices; `num_frames` (the pipeline passes `config.num_frames`) is its length."""
        if fps is not None:
            raise ValueError(f"{type(self).__name__} samples {self.frames_per_clip} frames every "
                             f"{self.frame_stride} frames, not a rate: leave fps unset")
        frames = int(num_frames or self.frames_per_clip)
        return np.asarray(clip_indices(int(metadata.total_num_frames), frames, self.frame_stride)[0], dtype=int)

    def to_dict(self) -> dict[str, Any]:
        # Saved again, the config keeps naming the built-in class, so loading without remote code still works.
        return {**super().to_dict(), "video_processor_type": LOCAL_TYPE}
