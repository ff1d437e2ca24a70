"""The demo's long-video view, plain Python: a checkpoint over overlapping windows of an untrimmed upload.

`make_timeline(service, name, video, window=, stride=)` -> `Timeline`: every window's span and probabilities
(`runner predict --window`'s rows, from the same code), the long table a chart draws, small frame strips for
the moment picker, and the table as CSV. The video is decoded as one stream, so its length costs time, not
memory. Bad input is a one-line `DemoError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from demo.service import DemoError, DemoService, frame_strip, resolve_checkpoint, validate_video
from vjepa_core.data import VideoInfo
from vjepa_core.errors import UserError
from vjepa_core.inference.windows import WindowPrediction, classify_windows, plan_windows, write_rows

STRIP_FRAME_PX = 80
TOP_K = 3


@dataclass
class Timeline:
    checkpoint: str
    video: VideoInfo
    window: float
    stride: float
    predictions: list[dict[str, Any]]  # WindowPrediction.row: start, end, top, probs
    rows: list[dict[str, Any]]  # WindowPrediction.flat_row: the downloadable table
    strips: list[np.ndarray]  # uint8 [h, w, 3] per window

    @property
    def duration(self) -> float:
        return self.video.num_frames / self.video.fps

    def chart_frame(self) -> pd.DataFrame:
        """Long format for a line chart: one row per (window, label), at the window's centre."""
        return pd.DataFrame([{"time": round((p["start"] + p["end"]) / 2, 3), "label": label, "probability": prob}
                             for p in self.predictions for label, prob in p["probs"].items()])

    def table(self) -> pd.DataFrame:
        """The per-window table as shown: start, end and the top labels with their probabilities."""
        columns = ["start", "end", *(f"{kind}_{rank}" for rank in range(1, TOP_K + 1) for kind in ("label", "prob"))]
        return pd.DataFrame(self.rows)[[c for c in columns if c in self.rows[0]]]

    def nearest(self, seconds: float) -> int:
        """The window whose centre is closest to `seconds` (the earlier one on a tie)."""
        centres = np.array([(p["start"] + p["end"]) / 2 for p in self.predictions])
        return int(np.argmin(np.abs(centres - seconds)))

    def moment(self, seconds: float) -> tuple[np.ndarray, str]:
        index = self.nearest(seconds)
        window = self.predictions[index]
        top = " · ".join(f"{t['label']} {t['prob']:.0%}" for t in window["top"])
        return self.strips[index], f"window {index + 1} of {len(self.predictions)}: " \
                                   f"{window['start']:.2f}-{window['end']:.2f} s — {top}"

    def api(self) -> dict[str, Any]:
        """What `/timeline` returns to scripts."""
        info = self.video
        return {"checkpoint": self.checkpoint, "window": self.window, "stride": self.stride,
                "video": {"frames": info.num_frames, "fps": info.fps, "width": info.width, "height": info.height,
                          "seconds": round(self.duration, 3)},
                "windows": [{"start": p["start"], "end": p["end"], "probs": p["probs"]} for p in self.predictions]}

    def write_csv(self, folder: Path) -> Path:
        return write_rows(Path(folder) / f"timeline-{self.checkpoint.replace('/', '_')}.csv", self.rows)


def make_timeline(service: DemoService, name: str, video: str | os.PathLike[str] | None, *, window: float | None,
                  stride: float | None) -> Timeline:
    resolve_checkpoint(service.root, name)
    if not video:
        raise DemoError("upload a video first")
    if window is None or stride is None:
        raise DemoError("give a window and a stride in seconds")
    info = validate_video(video, service.limits)
    predictor, _ = service.cache.get(name)
    pre = predictor.pre
    shown = Path(video).name
    try:
        windows = plan_windows(info, window=float(window), stride=float(stride), frames_per_clip=pre["frames_per_clip"],
                               frame_stride=pre["frame_stride"], num_clips=pre["eval_clips"])
        predictions = list(classify_windows(predictor, video, windows, keep_frames=True))
    except UserError as exc:
        raise DemoError(f"{shown}: {exc.reason}") from exc
    strips = [_small_strip(p, pre) for p in predictions]
    return Timeline(name, info, float(window), float(stride), [p.row(TOP_K) for p in predictions],
                    [p.flat_row(TOP_K) for p in predictions], strips)


def _small_strip(prediction: WindowPrediction, pre: dict[str, Any]) -> np.ndarray:
    frames = prediction.frames
    assert frames is not None
    if frames.shape[-1] > STRIP_FRAME_PX:
        frames = F.interpolate(frames.float(), size=(STRIP_FRAME_PX, STRIP_FRAME_PX), mode="bilinear",
                               antialias=True, align_corners=False)
    return frame_strip(torch.as_tensor(frames), mean=pre["mean"], std=pre["std"])
