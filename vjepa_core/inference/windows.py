"""Long, untrimmed videos: overlapping windows, decoded as a stream, classified in batches.

A window's clips are placed inside it exactly as a checkpoint's eval clips are placed inside a test video, so a
window covering a whole short video gives that video's prediction. `stream_views` yields each window's views
float32 [T, 3, crop, crop] from ONE sequential decode, resizing each frame to the model's short side on arrival
and dropping it once no pending window needs it: memory holds only the windows that overlap the decoding
position, whatever the video's length.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vjepa_core.data import VideoInfo, eval_clip_indices
from vjepa_core.data.decode import iter_frames
from vjepa_core.data.sampling import clip_span
from vjepa_core.data.transforms import crop_views, eval_resize
from vjepa_core.errors import UserError
from vjepa_core.inference.predict import Predictor, label_probs
from vjepa_core.store.atomic import staged_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Window:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    clips: tuple[np.ndarray, ...]  # absolute frame indices of each eval clip, [frames_per_clip] each

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def end(self) -> float:
        return self.end_frame / self.fps

    @functools.cached_property
    def frames(self) -> np.ndarray:
        """Every distinct frame index the window's clips read, ascending."""
        return np.unique(np.concatenate(self.clips))


@dataclass
class WindowPrediction:
    window: Window
    probs: dict[str, float]
    frames: torch.Tensor | None = None  # the first view as the model saw it, when asked for

    def top(self, k: int) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda item: -item[1])[:k]

    def row(self, k: int) -> dict[str, Any]:
        """The window as JSON: start, end (seconds), the top-k labels and every label's probability."""
        return {"start": round(self.window.start, 3), "end": round(self.window.end, 3),
                "top": [{"label": label, "prob": prob} for label, prob in self.top(k)], "probs": self.probs}

    def flat_row(self, k: int) -> dict[str, Any]:
        """The window as a table row: start, end, label_i / prob_i for the top k, then `p_<label>` for every label."""
        row: dict[str, Any] = {"start": round(self.window.start, 3), "end": round(self.window.end, 3)}
        for rank, (label, prob) in enumerate(self.top(k), start=1):
            row[f"label_{rank}"], row[f"prob_{rank}"] = label, round(prob, 6)
        return {**row, **{f"p_{label}": round(prob, 6) for label, prob in self.probs.items()}}


def check_table_path(path: str | Path) -> Path:
    """`path` if `write_rows` can write there: checked before any video is classified, so a mistyped --out costs
    nothing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: name the file to write, e.g. {path / 'predictions.csv'}")
    if path.suffix.lower() not in (".csv", ".json"):
        raise UserError(f"{path}: write the table as .csv or .json")
    return path


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write table rows to `path` as .csv (header: every column any row has, in order of appearance; a row
    without one leaves it empty) or .json (a list), atomically: a failure never leaves a partial table
    (`vjepa_core.store.atomic`)."""
    path = check_table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(path, elsewhere="write it elsewhere (--out)") as tmp, tmp.open("w", newline="") as handle:
        if path.suffix.lower() == ".json":
            json.dump(list(rows), handle, indent=1)
        else:
            columns = list(dict.fromkeys(name for row in rows for name in row)) or ["start", "end"]
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return path


def check_window(window: float, stride: float) -> None:
    """A window and stride in seconds that can place windows in any video, else a `UserError`."""
    if not (math.isfinite(window) and window > 0):
        raise UserError(f"window must be > 0 seconds, got {window:g}")
    if not (math.isfinite(stride) and stride > 0):
        raise UserError(f"stride must be > 0 seconds, got {stride:g}")


def plan_windows(info: VideoInfo, *, window: float, stride: float, frames_per_clip: int, frame_stride: int,
                 num_clips: int = 1) -> list[Window]:
    """Windows of `window` seconds every `stride` seconds; the last one ends at the video's end.

    Times are turned into frames with the video's frame rate (a window is at least one frame, a
    stride at least one frame). The final window is moved to end at the last frame when the regular
    grid stops short of it, so the whole video is covered. Bad values are a `UserError`.
    """
    check_window(window, stride)
    if info.fps <= 0:
        raise UserError("the video has no frame rate: cannot place windows in time")
    duration = info.num_frames / info.fps
    length = max(1, round(window * info.fps))
    if length > info.num_frames:
        raise UserError(f"window of {window:g} s is longer than the video ({duration:.2f} s, "
                        f"{info.num_frames} frames)")
    step = max(1, round(stride * info.fps))
    starts = list(range(0, info.num_frames - length + 1, step))
    if starts[-1] + length < info.num_frames:
        starts.append(info.num_frames - length)
    clips = eval_clip_indices(length, frames_per_clip, frame_stride, num_clips)
    return [Window(i, s, s + length, info.fps, tuple(s + c for c in clips)) for i, s in enumerate(starts)]


def short_window_note(windows: Sequence[Window], frames_per_clip: int, frame_stride: int) -> str | None:
    """A warning when a window holds fewer frames than one clip spans (its last frames then repeat)."""
    if not windows:
        return None
    length, span = windows[0].end_frame - windows[0].start_frame, clip_span(frames_per_clip, frame_stride)
    if length >= span:
        return None
    return (f"a window holds {length} frames but the checkpoint's clips span {span} ({frames_per_clip} frames, "
            f"stride {frame_stride}): each window's last frame repeats; a longer window avoids it")


def stream_views(path: str | Path, windows: Sequence[Window], *, crop_size: int, num_crops: int = 1,
                 threads: int = 0) -> Iterator[tuple[Window, list[torch.Tensor]]]:
    """(window, its clips x crops views) in window order, from one sequential decode of `path`."""
    needed: dict[int, list[Window]] = defaultdict(list)
    for window in windows:
        for frame in window.frames.tolist():
            needed[frame].append(window)
    held: dict[int, dict[int, torch.Tensor]] = defaultdict(dict)  # window -> frame -> resized [3, h, w]
    waiting = deque(windows)
    for position, rgb in iter_frames(path, sorted(needed), threads=threads):
        # Resize on arrival: a 1080p frame is held at the model's short side, never at full size. The
        # channels-last view resizes to the same pixels as a contiguous copy, without paying for the copy.
        image = eval_resize(torch.from_numpy(rgb).permute(2, 0, 1)[None], crop_size)[0].contiguous()
        for window in needed.pop(position):
            held[window.index][position] = image
        while waiting and len(held[waiting[0].index]) == len(waiting[0].frames):
            window = waiting.popleft()
            yield window, _views(window, held.pop(window.index), crop_size, num_crops)


def _views(window: Window, frames: dict[int, torch.Tensor], crop_size: int, num_crops: int) -> list[torch.Tensor]:
    return [view for clip in window.clips
            for view in crop_views(torch.stack([frames[i] for i in clip.tolist()]), crop_size, num_crops=num_crops)]


@torch.no_grad()
def classify_windows(predictor: Predictor, path: str | Path, windows: Sequence[Window], *, batch_size: int = 8,
                     keep_frames: bool = False) -> Iterator[WindowPrediction]:
    """Each window's prediction, in order, as soon as all of its views have been through the model.

    Views from consecutive windows share batches of `batch_size`; a window's probabilities are the
    mean softmax over its views, as `Predictor.classify` computes them for a whole video.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    pre = predictor.pre
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    first_views: dict[int, torch.Tensor] = {}
    waiting: deque[Window] = deque(windows)
    pending: list[tuple[int, torch.Tensor]] = []

    def finished() -> Iterator[WindowPrediction]:
        while waiting and len(scores[waiting[0].index]) == len(waiting[0].clips) * pre["eval_crops"]:
            window = waiting.popleft()
            probs = np.mean(scores.pop(window.index), axis=0)
            yield WindowPrediction(window, label_probs(predictor.labels, probs), first_views.pop(window.index, None))

    def run(batch: list[tuple[int, torch.Tensor]]) -> None:
        probs = predictor.probabilities(torch.stack([view for _, view in batch]))
        for (index, _), row in zip(batch, probs, strict=True):
            scores[index].append(row)

    views = stream_views(path, windows, crop_size=pre["crop_size"], num_crops=pre["eval_crops"])
    for window, window_views in views:
        if keep_frames:
            first_views[window.index] = window_views[0]
        pending.extend((window.index, view) for view in window_views)
        while len(pending) >= batch_size:
            run(pending[:batch_size])
            pending = pending[batch_size:]
            yield from finished()
    if pending:
        run(pending)
    yield from finished()
