"""Video files -> model-ready clips, as torch Datasets (decoding runs in DataLoader workers).

`TrainClips[i]` -> (clip [T, 3, crop, crop] float32, label, video index): a random temporal offset
and `TrainAugment`, both drawn from a generator seeded by (seed, epoch, video, view), so a clip
is the same whether it is made now, in a worker, or again to fill a cache.
`EvalClips[i]` -> (clip, label, video index) for one of `clips x crops` deterministic views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


class TrainClips(_VideoClips):
    """One augmented view per video per (epoch, view) draw; `set_epoch` picks the draw."""

    def __init__(self, videos: Sequence[VideoItem], labels: Sequence[str], config: ClipConfig, *,
                 seed: int, augment: bool, hflip: bool, flip_pairs: dict[str, str] | None = None) -> None:
        super().__init__(videos, labels, config)
        self.seed = seed
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
        return self.make(video, self.view)

    def make(self, video: int, view: int) -> tuple[torch.Tensor, int, int]:
        cfg = self.config
        if not self.augment:
            indices = eval_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride, 1)[0]
            frames = read_frames(self.videos[video].path, indices, decoder=cfg.decoder)
            return eval_views(frames, cfg.crop_size)[0], self.label_of(video), video
        rng_seed = int(np.random.SeedSequence([self.seed, video, view]).generate_state(1)[0])
        rng = np.random.default_rng(rng_seed)
        indices = train_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride, rng)
        frames = read_frames(self.videos[video].path, indices, decoder=cfg.decoder)
        clip, flipped = self.augmenter(frames, torch.Generator().manual_seed(rng_seed))
        return clip, self._label_after_flip(video, flipped), video

    def _label_after_flip(self, video: int, flipped: bool) -> int:
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
        clip_no, crop_no = divmod(view, self.num_crops)
        cfg = self.config
        indices = eval_clip_indices(self.num_frames(video), cfg.frames_per_clip, cfg.frame_stride,
                                    self.num_clips)[clip_no]
        frames = read_frames(self.videos[video].path, indices, decoder=cfg.decoder)
        return eval_views(frames, cfg.crop_size, num_crops=self.num_crops)[crop_no], self.label_of(video), video
