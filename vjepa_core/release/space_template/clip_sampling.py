"""Which frames the Space app reads, and what it says of a video it cannot open: the standard library only.

Written by vjepa-lab's `runner release --space` beside `app.py`; `clip_indices` is the rule vjepa-lab's
evaluation (and `runner predict`) samples frames by, so the app answers as the run was scored.
"""

from __future__ import annotations

from pathlib import Path


def clip_indices(num_frames: int, frames: int, stride: int, clips: int = 1) -> list[list[int]]:
    """`clips` clips of `frames` frames `stride` apart, centred in equal parts of the valid starts (one: the
    centred clip); a video shorter than a clip repeats its last frame. The evaluation's own rule."""
    last_start = max(0, num_frames - ((frames - 1) * stride + 1))
    starts = [((2 * i + 1) * last_start) // (2 * clips) for i in range(clips)]
    return [[min(start + j * stride, num_frames - 1) for j in range(frames)] for start in starts]


def decoder_reason(error: Exception, file: Path) -> str:
    """FFmpeg's words from a torchcodec error, without its source location or the server-side path."""
    text = " ".join(str(error).split())
    reason = text.split(str(file), 1)[1] if str(file) in text else text.rsplit(", ", 1)[-1]
    return reason.strip(" :,") or type(error).__name__
