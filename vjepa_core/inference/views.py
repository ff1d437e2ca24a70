"""A video's evaluation views as its run was scored, and a run's validation views as evidence for its engines.

`decoded_clips(video, pre)` -> the clips the run's `preprocessing` names (frames, stride, clips), uint8
[T, H, W, 3] each; `clip_views(clips, pre)` -> float32 views [V, T, 3, crop, crop] (each clip's crops).
`validation_evidence(run_id, warehouse, pre)` -> the `Evidence` an engine for that run is checked on: the views
of the run's validation videos, as the warehouse lists them (its `predictions` rows of split `val`), at most
`MAX_VIEWS`, spread over the videos. None when the warehouse does not know the run or none of its validation
videos is here: the engines then check on probe clips.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vjepa_core.data import eval_clip_indices, eval_views, probe_video, read_frames
from vjepa_core.errors import UserError
from vjepa_core.inference.engines.base import EngineUnfit
from vjepa_core.inference.engines.check import Evidence, view_evidence

log = logging.getLogger(__name__)

# Enough that one flipped top-1 keeps 98% (1 of 64 is 1.6%); few enough for a large model's check to take minutes.
MAX_VIEWS = 64


def decoded_clips(video: str | Path, pre: dict[str, Any], *, decoder: str = "auto") -> list[np.ndarray]:
    info = probe_video(str(video), decoder=decoder)
    clips = eval_clip_indices(info.num_frames, pre["frames_per_clip"], pre["frame_stride"], pre["eval_clips"])
    return [read_frames(str(video), indices, decoder=decoder) for indices in clips]


def clip_views(clips: list[np.ndarray], pre: dict[str, Any]) -> list[torch.Tensor]:
    return [view for clip in clips for view in eval_views(clip, pre["crop_size"], num_crops=pre["eval_crops"])]


def validation_videos(warehouse: Path, run_id: str) -> list[str]:
    """The run's validation videos as the warehouse's predictions list them (none when it does not know the run)."""
    import duckdb

    from vjepa_core.store.warehouse import read_connection

    if not Path(warehouse).is_file():
        return []
    try:
        with read_connection(warehouse) as con:
            rows = con.execute("select distinct video from predictions where run_id = ? and split = 'val' "
                               "order by video", [run_id]).fetchall()
    except (UserError, duckdb.Error) as error:  # engines still check, on probe clips
        log.warning("warehouse %s not read: %s", warehouse, error)
        return []
    return [video for (video,) in rows]


def validation_evidence(run_id: str, warehouse: Path | None, pre: dict[str, Any], *,
                        decoder: str = "auto") -> Evidence | None:
    """See the module docstring. The views are decoded when an engine is first checked, not before."""
    listed = validation_videos(warehouse, run_id) if warehouse is not None else []
    videos = [video for video in listed if Path(video).is_file()]
    if not videos:
        if listed:
            log.info("run %s: its %d validation videos are not here: engines check on probe clips", run_id, len(listed))
        return None
    per_video = pre["eval_clips"] * pre["eval_crops"]
    if len(videos) * per_video > MAX_VIEWS:  # evenly spaced over the (sorted: class by class) videos
        videos = [videos[int(i)] for i in np.linspace(0, len(videos) - 1, max(1, MAX_VIEWS // per_video))]

    def load() -> torch.Tensor:
        views = []
        for video in videos:
            try:
                views += clip_views(decoded_clips(video, pre, decoder=decoder), pre)
            except UserError:  # a file that does not decode: the other videos still count
                continue
        if not views:
            raise EngineUnfit(f"none of run {run_id}'s validation videos decodes")
        return torch.stack(views)

    return view_evidence(load, run_id=run_id, videos=videos, views=len(videos) * per_video)
