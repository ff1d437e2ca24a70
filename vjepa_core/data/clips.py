"""Video files -> model-ready clips, as torch Datasets (decoding runs in DataLoader workers).

`TrainClips[i]` and `EvalClips[i]` -> (clip [T, 3, crop, crop] float32, label, video index). A training view's
randomness is drawn from a generator seeded by the view and the video's name, never its index or the training
seed, so a view has the same pixels whoever makes it (a worker, a cache fill, another seed's run, another data
size): views are data, and the token cache can share them. `make_views` makes several views of one video from
ONE decode of their frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vjepa_core.data import (
    TrainAugment,
    VideoItem,
    eval_clip_indices,
    eval_views,
    probe_video,
    read_frames,
    train_clip_indices,
)

Clip = tuple[torch.Tensor, bool]  # [T, 3, crop, crop] float32, mirrored left-right


def video_seed(item: VideoItem) -> int:
    """A video's share of its augmentation seed: its label and file name, not its index in a split
    (which moves with the data size) nor its absolute path (which moves with the dataset folder)."""
    return int(hashlib.sha256(f"{item.label}/{Path(item.path).name}".encode()).hexdigest()[:8], 16)


@dataclass(frozen=True)
class ClipConfig:
    frames_per_clip: int
    frame_stride: int
    crop_size: int
    decoder: str = "auto"


class _VideoClips(Dataset):
    def __init__(self, videos: Sequence[VideoItem], labels: Sequence[str], config: ClipConfig) -> None:
        self.videos = list(videos)
        self.label_index = {label: i for i, label in enumerate(labels)}
        self.config = config
        self._num_frames: dict[int, int] = {}

    def num_frames(self, video: int) -> int:
        if video not in self._num_frames:
            info = probe_video(self.videos[video].path, decoder=self.config.decoder)
            self._num_frames[video] = info.num_frames
        return self._num_frames[video]

    def label_of(self, video: int) -> int:
        return self.label_index[self.videos[video].label]

    def _read_many(self, video: int, plans: list[np.ndarray]) -> list[np.ndarray]:
        """Frames of several index lists from one decode: uint8 [T, H, W, 3] per list."""
        frames = read_frames(self.videos[video].path, np.concatenate(plans), decoder=self.config.decoder)
        return np.split(frames, np.cumsum([len(p) for p in plans])[:-1])


class TrainClips(_VideoClips):
    """Augmented views of the training videos; `set_view` picks which draw `__getitem__` makes."""

    def __init__(self, videos: Sequence[VideoItem], labels: Sequence[str], config: ClipConfig, *,
                 view_seed: int, augment: bool, hflip: bool, flip_pairs: dict[str, str] | None = None) -> None:
        super().__init__(videos, labels, config)
        self.view_seed = view_seed
        self.augment = augment
        self.flip_pairs = flip_pairs or {}
        self.view = 0
        # A mirrored clip takes the label flip_pairs names (left <-> right); others keep theirs.
        self.augmenter = TrainAugment(config.crop_size, hflip=hflip)

    def set_view(self, view: int) -> None:
        self.view = view

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, video: int) -> tuple[torch.Tensor, int, int]:
        clip, flipped = self.make_views(video, [self.view])[0]
        return clip, self.label_after_flip(video, flipped), video

    def make(self, video: int, view: int) -> tuple[torch.Tensor, int, int]:
        self.set_view(view)
        return self[video]

    def _rng_seed(self, video: int, view: int) -> int:
        return int(np.random.SeedSequence([self.view_seed, video_seed(self.videos[video]), view]).generate_state(1)[0])

    def make_views(self, video: int, views: Sequence[int]) -> list[Clip]:
        cfg = self.config
        if not self.augment:  # every view is the centre clip: decode it once
            indices = eval_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride, 1)[0]
            clip = eval_views(self._read_many(video, [indices])[0], cfg.crop_size)[0]
            return [(clip, False) for _ in views]
        seeds = [self._rng_seed(video, view) for view in views]
        plans = [train_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride,
                                    np.random.default_rng(seed)) for seed in seeds]
        return [self.augmenter(frames, torch.Generator().manual_seed(seed))
                for frames, seed in zip(self._read_many(video, plans), seeds, strict=True)]

    def view_key(self, video: int, view: int) -> dict[str, Any]:
        if not self.augment:
            return {"kind": "eval", "clips": 1, "clip": 0, "crops": 1, "crop": 0}
        return {"kind": "train", "seed": self._rng_seed(video, view), "augment": repr(self.augmenter)}

    def label_after_flip(self, video: int, flipped: bool) -> int:
        label = self.videos[video].label
        if flipped:
            label = self.flip_pairs.get(label, label)
        return self.label_index[label]


class EvalClips(_VideoClips):
    """All `clips x crops` deterministic views of every video, flattened."""

    def __init__(self, videos: Sequence[VideoItem], labels: Sequence[str], config: ClipConfig, *,
                 num_clips: int = 1, num_crops: int = 1) -> None:
        super().__init__(videos, labels, config)
        self.num_clips = num_clips
        self.num_crops = num_crops

    @property
    def views_per_video(self) -> int:
        return self.num_clips * self.num_crops

    def __len__(self) -> int:
        return len(self.videos) * self.views_per_video

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        video, view = divmod(index, self.views_per_video)
        return self.make_views(video, [view])[0][0], self.label_of(video), video

    def make_views(self, video: int, views: Sequence[int]) -> list[Clip]:
        cfg = self.config
        starts = eval_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride, self.num_clips)
        clip_nos = sorted({view // self.num_crops for view in views})
        frames = dict(zip(clip_nos, self._read_many(video, [starts[c] for c in clip_nos]), strict=True))
        crops = {c: eval_views(frames[c], cfg.crop_size, num_crops=self.num_crops) for c in clip_nos}
        return [(crops[view // self.num_crops][view % self.num_crops], False) for view in views]

    def view_key(self, video: int, view: int) -> dict[str, Any]:
        clip_no, crop_no = divmod(view, self.num_crops)
        return {"kind": "eval", "clips": self.num_clips, "clip": clip_no, "crops": self.num_crops, "crop": crop_no}
