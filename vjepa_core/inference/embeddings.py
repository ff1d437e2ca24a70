"""One vector per video, or per window of one, from the frozen encoder or a trained checkpoint's pooler.

`embed_videos(...)` -> `Embeddings`: `rows` (one per vector, the warehouse's `embeddings` columns) and
`vectors` float32 [rows, D], either the mean of the encoder's tokens [N, D] or the checkpoint's attentive
pooler over them. A video is its centre clip, a window the centre clip of the window, as `runner predict`
reads them; tokens come from the shared `TokenCache` under training's keys, so a video a run has seen costs
no encoder pass, and windows are decoded as one stream, so long videos do not sit in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from vjepa_core.data import VideoItem, probe_video
from vjepa_core.data.clips import ClipConfig, EvalClips
from vjepa_core.data.datasets import label_names
from vjepa_core.errors import UserError
from vjepa_core.inference.windows import Window, plan_windows, stream_views
from vjepa_core.models import encoder_fingerprint, feature_layers, weights_fingerprint
from vjepa_core.models.device import autocast
from vjepa_core.store.cache import TokenCache
from vjepa_core.training.features import FeedConfig, VideoJobs, encode_stream, make_loader, token_group

SOURCES = {"encoder": "mean-pooled encoder tokens", "pooler": "the model's attentive pooler"}
Key = tuple[int, int]  # video index, window index (0 for a whole video)


@dataclass(frozen=True)
class Windowing:
    window: float
    stride: float


@dataclass
class Embeddings:
    rows: pd.DataFrame
    vectors: np.ndarray  # float32 [len(rows), D]
    encoded_clips: int
    cache_hits: int
    fingerprint: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): no window fits the video


@dataclass(frozen=True, eq=False)
class _View:
    video: int
    window: Window | None  # None: the whole video's eval view
    view: dict[str, Any]  # its description in the token cache


def embedding_fingerprint(model: torch.nn.Module, source: str, clip_cfg: ClipConfig, *,
                          engine: str | None = None) -> str:
    """What makes the vectors: the encoder's (and for `pooler` the pooler's) weights, the encoder blocks whose
    tokens they pool (`feature_layers`, when not the last alone), the preprocessing, and the inference engine
    that ran the encoder when it was not the eager model."""
    layers = {"layers": list(feature_layers(model))} if feature_layers(model) else {}
    layers = {**layers, "engine": engine} if engine else layers
    parts = {"source": source, "encoder": encoder_fingerprint(model), **layers,
             "pooler": weights_fingerprint(model.pooler) if source == "pooler" else None,
             "frames_per_clip": clip_cfg.frames_per_clip, "frame_stride": clip_cfg.frame_stride,
             "crop_size": clip_cfg.crop_size}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def embed_videos(model: torch.nn.Module, videos: Sequence[VideoItem], *, source: str, clip_cfg: ClipConfig,
                 feed: FeedConfig, cache_root: Path | None, model_name: str,
                 windowing: Windowing | None = None) -> Embeddings:
    """Embed every video (or each of its windows); tokens are read from, or added to, the token cache."""
    if source not in SOURCES:
        raise UserError(f"unknown embedding source {source!r} (choose from {', '.join(SOURCES)})")
    model.eval()
    clips = EvalClips(list(videos), label_names(videos), clip_cfg)
    cache = TokenCache(cache_root, token_group(model, clips, feed.precision, name=model_name, engine=feed.engine))
    views, skipped = _views(clips, windowing)

    def encode(missing: list[_View]) -> Iterator[tuple[_View, np.ndarray, dict[str, Any]]]:
        for view, array in encode_stream(model, _missing_clips(clips, missing, feed), feed, total=len(missing)):
            yield view, array, {"video": str(clips.videos[view.video].path), "view": view.view, "flipped": False}

    tokens = cache.fetch({view: (clips.videos[view.video].path, view.view) for view in views}, encode_missing=encode)
    vectors = _reduce(model, [tokens[view][0] for view in views], source, feed)
    fingerprint = embedding_fingerprint(model, source, clip_cfg, engine=feed.engine)
    rows = _rows(views, clips, fingerprint=fingerprint, source=source, windowing=windowing, dim=vectors.shape[1])
    # Every miss was encoded, once: the misses are the clips the encoder ran on.
    return Embeddings(rows, vectors, cache.stats.misses, cache.stats.hits, fingerprint, skipped)


def _views(clips: EvalClips, windowing: Windowing | None) -> tuple[list[_View], list[tuple[str, str]]]:
    """Every view to embed, and (path, reason) for each video no window fits (shorter than the window)."""
    cfg = clips.config
    views, skipped = [], []
    for index, item in enumerate(clips.videos):
        if windowing is None:
            view = clips.view_key(index, 0)
            views.append(_View(index, None, view))
            continue
        try:
            windows = plan_windows(probe_video(item.path, decoder=cfg.decoder), window=windowing.window,
                                   stride=windowing.stride, frames_per_clip=cfg.frames_per_clip,
                                   frame_stride=cfg.frame_stride)
        except UserError as error:
            skipped.append((item.path, error.reason))
            continue
        for window in windows:
            view = {"kind": "window", "start": window.start_frame, "end": window.end_frame, "clips": 1, "clip": 0,
                    "crops": 1, "crop": 0}
            views.append(_View(index, window, view))
    return views, skipped


def _missing_clips(clips: EvalClips, missing: list[_View], feed: FeedConfig) -> Iterator[tuple[_View, torch.Tensor]]:
    """Clips of the views not in the cache: whole videos decoded in DataLoader workers, windows streamed."""
    whole = [view for view in missing if view.window is None]
    if whole:
        by_video = {view.video: view for view in whole}
        jobs = VideoJobs({"all": clips}, [("all", video, [0]) for video in by_video])
        for batch in make_loader(jobs, feed, batch_size=None):
            for (_, video, _), clip, _ in batch:
                yield by_video[video], clip
    windowed: dict[int, list[_View]] = {}
    for view in missing:
        if view.window is not None:
            windowed.setdefault(view.video, []).append(view)
    for video, views in windowed.items():
        by_window = {view.window.index: view for view in views if view.window is not None}
        stream = stream_views(clips.videos[video].path, [view.window for view in views if view.window is not None],
                              crop_size=clips.config.crop_size)
        for window, (clip,) in stream:
            yield by_window[window.index], clip


def _reduce(model: torch.nn.Module, tokens: list[np.ndarray], source: str, feed: FeedConfig) -> np.ndarray:
    """Tokens [N, D] per view -> float32 [views, D]: their mean, or the pooler's output in batches."""
    if source == "encoder":
        return np.stack([np.asarray(t, dtype=np.float32).mean(axis=0) for t in tokens]) if tokens else \
            np.zeros((0, model.config.hidden_size), np.float32)
    out = []
    for first in range(0, len(tokens), feed.encode_batch_size):
        batch = torch.from_numpy(np.stack(tokens[first:first + feed.encode_batch_size])).float().to(feed.device)
        with autocast(feed.device, feed.precision):
            out.append(model.pooler(batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)


def _rows(views: list[_View], clips: EvalClips, *, fingerprint: str, source: str, windowing: Windowing | None,
          dim: int) -> pd.DataFrame:
    created = datetime.now()
    rows = []
    for view in views:
        item = clips.videos[view.video]
        if view.window is None:
            frames = clips.num_frames(view.video)
            span = (0, frames, None, None)
        else:
            span = (view.window.start_frame, view.window.end_frame, view.window.start, view.window.end)
        rows.append({"model_fingerprint": fingerprint, "video": str(item.path), "start_frame": span[0],
                     "end_frame": span[1], "start_s": span[2], "end_s": span[3], "label": item.label,
                     "split": item.split, "source": source, "frames_per_clip": clips.config.frames_per_clip,
                     "frame_stride": clips.config.frame_stride,
                     "window_s": windowing.window if windowing else None,
                     "stride_s": windowing.stride if windowing else None, "dim": dim, "created_at": created})
    return pd.DataFrame(rows)


def check_parquet_path(path: Path) -> Path:
    """`path` if `write_parquet` can write there: checked before any video is encoded."""
    if path.is_dir():
        raise UserError(f"{path} is a folder: name the file to write, e.g. {path / 'embeddings.parquet'}")
    if path.suffix.lower() != ".parquet":
        raise UserError(f"{path}: the vectors are written as Parquet; name a .parquet file")
    return path


def write_parquet(path: Path, rows: pd.DataFrame, vectors: np.ndarray) -> Path:
    """`rows` plus an `embedding` list column, as parquet, written atomically (`vjepa_core.store.atomic`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vjepa_core.store.atomic import staged_file
    from vjepa_core.store.rows import vector_column

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(rows, preserve_index=False).append_column("embedding", vector_column(vectors))
    with staged_file(path, elsewhere="write it elsewhere (--out, or --results on another disk)") as tmp:
        pq.write_table(table, tmp)
    return path
