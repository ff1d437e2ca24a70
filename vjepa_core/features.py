"""What the trainable part of a model eats: pixel clips, or cached frozen-encoder outputs.

A feed gives the training loop batches and a `forward(model, inputs) -> logits [B, classes]`;
the loop cannot tell the two apart.
- `PixelFeed`: clips [B, T, 3, crop, crop] decoded every step; forward = the whole model.
- `TokenFeed`: the frozen encoder ran once per (video, view); inputs are its tokens [B, N, D]
  (forward = pooler + classifier), or pooled vectors [B, D] when the pooler is frozen too
  (forward = classifier). Training draws one of `train_views` cached augmented views per video
  per epoch, so augmentation survives caching.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from vjepa_core.clips import EvalClips, TrainClips
from vjepa_core.device import autocast

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, labels, video indices


@dataclass
class Timings:
    decode: float = 0.0
    encode: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"decode_seconds": self.decode, "encode_seconds": self.encode}


@dataclass
class FeedConfig:
    device: torch.device
    precision: str
    batch_size: int
    num_workers: int = 0
    encode_batch_size: int = 8
    progress: bool = True
    timings: Timings = field(default_factory=Timings)


def _loader(dataset: Dataset, cfg: FeedConfig, *, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=cfg.num_workers, pin_memory=cfg.device.type == "cuda",
                      persistent_workers=False)


def _timed(loader: DataLoader, timings: Timings) -> Iterator[Batch]:
    """Yield batches, adding the time spent waiting for decoding to `timings.decode`."""
    iterator = iter(loader)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        timings.decode += time.perf_counter() - start
        yield batch


class PixelFeed:
    """Decode and preprocess clips every step: for strategies that train the encoder."""

    def __init__(self, train: TrainClips, evals: dict[str, EvalClips], cfg: FeedConfig, *, seed: int) -> None:
        self.train, self.evals, self.cfg, self.seed = train, evals, cfg, seed

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        self.train.set_view(epoch)
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        loader = _loader(self.train, self.cfg, batch_size=self.cfg.batch_size, shuffle=True, generator=generator)
        yield from _timed(loader, self.cfg.timings)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        yield from _timed(_loader(self.evals[split], self.cfg, batch_size=self.cfg.batch_size), self.cfg.timings)

    def views_per_video(self, split: str) -> int:
        return self.evals[split].views_per_video

    @staticmethod
    def forward(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(pixel_values_videos=inputs).logits


class TokenFeed:
    """Run the frozen encoder (and frozen pooler) once; train on what it produced."""

    def __init__(self, model: torch.nn.Module, train: TrainClips, evals: dict[str, EvalClips], cfg: FeedConfig,
                 *, seed: int, train_views: int, pooled: bool) -> None:
        self.cfg, self.seed, self.pooled = cfg, seed, pooled
        self.train_views = train_views if train.augment else 1
        self.train_videos = len(train)
        self._views_per_video = {split: ds.views_per_video for split, ds in evals.items()}
        self.train_store = self._encode_train(model, train)
        self.eval_stores = {split: self._encode(model, ds, f"encode {split}") for split, ds in evals.items()}

    def _encode_train(self, model: torch.nn.Module, train: TrainClips) -> TensorDataset:
        parts = []
        for view in range(self.train_views):
            train.set_view(view)
            parts.append(self._encode(model, train, f"encode train view {view + 1}/{self.train_views}"))
        inputs = torch.stack([p.tensors[0] for p in parts], dim=1)   # [videos, views, ...]
        labels = torch.stack([p.tensors[1] for p in parts], dim=1)   # labels can differ per view (flips)
        return TensorDataset(inputs, labels, parts[0].tensors[2])

    @torch.no_grad()
    def _encode(self, model: torch.nn.Module, dataset: Dataset, desc: str) -> TensorDataset:
        cfg = self.cfg
        outputs, labels, videos = [], [], []
        batches = _timed(_loader(dataset, cfg, batch_size=cfg.encode_batch_size), cfg.timings)
        for clips, label, video in tqdm(batches, desc=desc, total=-(-len(dataset) // cfg.encode_batch_size),
                                        disable=not cfg.progress, leave=False):
            start = time.perf_counter()
            with autocast(cfg.device, cfg.precision):
                clips = clips.to(cfg.device, non_blocking=True)
                tokens = model.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
                if self.pooled:
                    tokens = model.pooler(tokens)
            # fp16 halves the cache; the trainable part upcasts, its error is far below run-to-run noise.
            outputs.append(tokens.to(torch.float16).cpu())
            cfg.timings.encode += time.perf_counter() - start
            labels.append(label)
            videos.append(video)
        return TensorDataset(torch.cat(outputs), torch.cat(labels), torch.cat(videos))

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        inputs, labels, videos = self.train_store.tensors
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(self.train_videos, generator=generator)
        view = torch.randint(self.train_views, (self.train_videos,), generator=generator)
        for chunk in order.split(self.cfg.batch_size):
            picked = view[chunk]
            yield inputs[chunk, picked].float(), labels[chunk, picked], videos[chunk]

    def eval_batches(self, split: str) -> Iterator[Batch]:
        inputs, labels, videos = self.eval_stores[split].tensors
        for start in range(0, len(inputs), self.cfg.batch_size):
            end = start + self.cfg.batch_size
            yield inputs[start:end].float(), labels[start:end], videos[start:end]

    def views_per_video(self, split: str) -> int:
        return self._views_per_video[split]

    def forward(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            return model.classifier(inputs)
        return model.classifier(model.pooler(inputs))


def cache_bytes(feed: TokenFeed) -> int:
    stores = [feed.train_store, *feed.eval_stores.values()]
    return int(sum(t.numel() * t.element_size() for s in stores for t in s.tensors))


def average_views(probs: np.ndarray, videos: np.ndarray, num_videos: int) -> np.ndarray:
    """Average softmax over each video's views: [views, classes] -> [videos, classes]."""
    out = np.zeros((num_videos, probs.shape[1]), dtype=np.float64)
    counts = np.zeros(num_videos)
    np.add.at(out, videos, probs)
    np.add.at(counts, videos, 1)
    return out / np.maximum(counts, 1)[:, None]
