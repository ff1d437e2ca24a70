"""What the trainable part of a model eats: pixel clips, or cached frozen-encoder outputs.

A feed gives the loop batches (inputs, labels [B], video indices [B]) and `forward(model, inputs) -> logits
[B, classes]`, so the loop cannot tell them apart. `PixelFeed` decodes clips [B, T, 3, crop, crop] every step.
`TokenFeed` runs the frozen encoder at most once per (video, view) ever, its tokens [B, N, D] (or pooled vectors
[B, D] when the pooler is frozen too) kept in a `TokenCache`; training draws one of `train_views` cached
augmented views per video per epoch, so augmentation survives caching.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import transformers
from torch.utils.data import DataLoader, Dataset

from vjepa_core.data.clips import EvalClips, TrainClips
from vjepa_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, resize_size
from vjepa_core.models import encoder_fingerprint, feature_layers, weights_fingerprint
from vjepa_core.models.device import autocast
from vjepa_core.progress import progress_bar
from vjepa_core.store.cache import Entry, TokenCache

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, labels, video indices
Request = tuple[str, int, int]  # split, video index in that split, view number
Made = tuple[Request, np.ndarray, dict[str, Any]]  # a missing entry, made: request, array, metadata
T = TypeVar("T")


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
    # An inference engine's encoder (`vjepa_core.inference.engines`, part "encoder": pixels -> tokens) to run
    # instead of the eager model, and its name, which keys the tokens it makes apart (`token_group`).
    encoder: Callable[[torch.Tensor], torch.Tensor] | None = None
    engine: str | None = None


def make_loader(dataset: Dataset, cfg: FeedConfig, *, batch_size: int | None, sampler: Sequence[int] | None = None
            ) -> DataLoader:
    # batch_size=None hands items over untouched (the default would turn request tuples into lists).
    collate = _as_is if batch_size is None else None
    return QuietWorkersLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=cfg.num_workers,
                              pin_memory=cfg.device.type == "cuda", persistent_workers=False, collate_fn=collate)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class QuietWorkersLoader(DataLoader):
    """A DataLoader whose decode workers leave Ctrl-C and `kill` to the main process.

    Sent to the whole process group, they reach the workers too. Were a worker to die of one, torch would
    raise "DataLoader worker ... is killed by signal" in the main process wherever it happens to be,
    cleanup included. The signals are blocked while the workers start (a worker inherits the mask, so
    one arriving before its init function is held, not acted on), and each worker ignores them before
    unblocking; a worker whose main process died (kill -9) still exits on its own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("num_workers"):
            kwargs.setdefault("worker_init_fn", _leave_signals_to_the_main_process)
        super().__init__(*args, **kwargs)

    def _get_iterator(self) -> Any:
        if self.num_workers == 0:
            return super()._get_iterator()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super()._get_iterator()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _leave_signals_to_the_main_process(worker_id: int) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _as_is(item: Any) -> Any:
    return item


def _timed(loader: DataLoader | Iterator[Any], timings: Timings) -> Iterator[Any]:
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


def epoch_order(seed: int, epoch: int, videos: int, views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training order of an epoch and the view each video shows: the same for both feeds."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(videos, generator=generator)
    return order, torch.randint(views, (videos,), generator=generator)


class PixelFeed:
    """Decode and preprocess clips every step: for strategies that train the encoder."""

    def __init__(self, train: TrainClips, evals: dict[str, EvalClips], cfg: FeedConfig, *, seed: int) -> None:
        self.train, self.evals, self.cfg, self.seed = train, evals, cfg, seed

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        # A fresh augmented draw every epoch, different for every training seed.
        self.train.set_view(self.seed * 100_003 + epoch)
        order, _ = epoch_order(self.seed, epoch, len(self.train), 1)
        loader = make_loader(self.train, self.cfg, batch_size=self.cfg.batch_size, sampler=order.tolist())
        yield from _timed(loader, self.cfg.timings)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        yield from _timed(make_loader(self.evals[split], self.cfg, batch_size=self.cfg.batch_size), self.cfg.timings)

    def views_per_video(self, split: str) -> int:
        return self.evals[split].views_per_video

    @staticmethod
    def forward(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(pixel_values_videos=inputs).logits


class VideoJobs(Dataset):
    """Item i: every missing view of one video from one decode -> [(request, clip, flipped)]."""

    def __init__(self, sources: dict[str, TrainClips | EvalClips], jobs: list[tuple[str, int, list[int]]]) -> None:
        self.sources, self.jobs = sources, jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> list[tuple[Request, torch.Tensor, bool]]:
        split, video, views = self.jobs[index]
        clips = self.sources[split].make_views(video, views)
        return [((split, video, view), clip, flipped) for view, (clip, flipped) in zip(views, clips, strict=True)]


def encode_tokens(model: torch.nn.Module, clips: torch.Tensor, cfg: FeedConfig) -> np.ndarray:
    """The frozen encoder's tokens: clips [B, T, 3, crop, crop] -> float16 [B, N, D], under autocast."""
    start = time.perf_counter()
    if cfg.encoder is not None:
        tokens = cfg.encoder(clips)
    else:
        if cfg.device.type == "cuda":  # pinned host memory lets the copy overlap with compute
            clips = clips.pin_memory()
        with autocast(cfg.device, cfg.precision):
            tokens = model.vjepa2(pixel_values_videos=clips.to(cfg.device, non_blocking=True),
                                  skip_predictor=True).last_hidden_state
    # fp16 halves the cache; the trainable part upcasts, its error is far below run-to-run noise.
    out = tokens.to(torch.float16).cpu().numpy()
    cfg.timings.encode += time.perf_counter() - start
    return out


def encode_stream(model: torch.nn.Module, clips: Iterable[tuple[T, torch.Tensor]], cfg: FeedConfig, *,
                  total: int) -> Iterator[tuple[T, np.ndarray]]:
    """(tag, tokens [N, D]) for (tag, clip) pairs as they arrive, encoded in batches of `encode_batch_size`."""
    bar = progress_bar(total=total, desc="encode", unit="clips", enabled=cfg.progress and bool(total))
    pending: list[tuple[T, torch.Tensor]] = []
    for item in clips:
        pending.append(item)
        if len(pending) == cfg.encode_batch_size:
            yield from _encoded(model, pending, cfg, bar)
            pending = []
    if pending:
        yield from _encoded(model, pending, cfg, bar)
    bar.close()


def _encoded(model: torch.nn.Module, chunk: list[tuple[T, torch.Tensor]], cfg: FeedConfig, bar: Any
             ) -> Iterator[tuple[T, np.ndarray]]:
    tokens = encode_tokens(model, torch.stack([clip for _, clip in chunk]), cfg)
    bar.update(len(chunk))
    yield from zip((tag for tag, _ in chunk), tokens, strict=True)


def token_group(model: torch.nn.Module, clips: TrainClips, precision: str, *, name: str,
                engine: str | None = None) -> dict[str, Any]:
    """Everything that changes every token of a cache group (see vjepa_core.store.cache).

    Tokens of several encoder blocks (`feature_layers`) are a group of their own; the last block's
    group has no `layers` key, so the caches written before feature layers existed stay valid. So do
    tokens an inference `engine` other than the eager model made (a quantized one): a group of their own."""
    config, clip_cfg = model.config, clips.config
    layers = {"layers": list(feature_layers(model))} if feature_layers(model) else {}
    layers = {**layers, "engine": engine} if engine else layers
    return {"kind": "tokens", **layers, "model": name, "encoder": encoder_fingerprint(model),
            "geometry": {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers", "patch_size",
                                                          "tubelet_size", "crop_size")},
            "crop_size": clip_cfg.crop_size, "resize": resize_size(clip_cfg.crop_size),
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "frames_per_clip": clip_cfg.frames_per_clip,
            "frame_stride": clip_cfg.frame_stride, "precision": precision,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


class TokenFeed:
    """Train the trainable part on cached outputs of the frozen encoder (and frozen pooler)."""

    def __init__(self, model: torch.nn.Module, train: TrainClips, evals: dict[str, EvalClips], cfg: FeedConfig,
                 *, seed: int, train_views: int, pooled: bool, cache_root: Path | None = None,
                 model_name: str = "?") -> None:
        self.cfg, self.seed, self.pooled = cfg, seed, pooled
        self.train_views = train_views if train.augment else 1
        self.sources: dict[str, TrainClips | EvalClips] = {"train": train, **evals}
        self.encoded_clips = 0
        group = token_group(model, train, cfg.precision, name=model_name)
        self.tokens = TokenCache(cache_root, group)
        self.pooled_cache = TokenCache(cache_root, {**group, "kind": "pooled",
                                                    "pooler": weights_fingerprint(model.pooler)}) if pooled else None
        views = {"train": self.train_views, **{split: ds.views_per_video for split, ds in evals.items()}}
        requests = [(split, video, view) for split, ds in self.sources.items()
                    for video in range(len(ds.videos)) for view in range(views[split])]
        was_training = model.training
        model.eval()
        entries = self._fill_pooled(model, requests) if pooled else self._fill_tokens(model, requests)
        model.train(was_training)
        self._build_stores(entries, views)

    # -- filling -------------------------------------------------------------------------------

    def _wanted(self, requests: list[Request]) -> dict[Request, tuple[Path, dict[str, Any]]]:
        """Each request's cache address: its video and the description of its view."""
        return {(split, video, view): (self.sources[split].videos[video].path,
                                       self.sources[split].view_key(video, view))
                for split, video, view in requests}

    @torch.no_grad()
    def _fill_tokens(self, model: torch.nn.Module, requests: list[Request]) -> dict[Request, Entry]:
        return self.tokens.fetch(self._wanted(requests), encode_missing=partial(self._encode, model))

    def _encode(self, model: torch.nn.Module, missing: list[Request]) -> Iterator[Made]:
        """The encoder's tokens of the `missing` views, each video decoded once for all of its views."""
        per_video: dict[tuple[str, int], list[int]] = defaultdict(list)
        for split, video, view in missing:
            per_video[(split, video)].append(view)
        jobs = VideoJobs(self.sources, [(split, video, views) for (split, video), views in per_video.items()])
        clips = (((request, flipped), clip) for batch in _timed(make_loader(jobs, self.cfg, batch_size=None),
                                                                self.cfg.timings)
                 for request, clip, flipped in batch)
        for (request, flipped), tokens in encode_stream(model, clips, self.cfg, total=len(missing)):
            source = self.sources[request[0]]
            self.encoded_clips += 1
            yield request, tokens, {"video": str(source.videos[request[1]].path),
                                    "view": source.view_key(request[1], request[2]), "flipped": flipped}

    @torch.no_grad()
    def _fill_pooled(self, model: torch.nn.Module, requests: list[Request]) -> dict[Request, Entry]:
        assert self.pooled_cache is not None
        return self.pooled_cache.fetch(self._wanted(requests), encode_missing=partial(self._pool, model))

    def _pool(self, model: torch.nn.Module, missing: list[Request]) -> Iterator[Made]:
        """The frozen pooler's vectors of the `missing` views, from their (cached or encoded) tokens."""
        tokens = self._fill_tokens(model, missing)
        start = time.perf_counter()
        for first in range(0, len(missing), self.cfg.encode_batch_size):
            chunk = missing[first:first + self.cfg.encode_batch_size]
            inputs = torch.from_numpy(np.stack([tokens[r][0] for r in chunk])).float().to(self.cfg.device)
            with autocast(self.cfg.device, self.cfg.precision):
                pooled = model.pooler(inputs).to(torch.float16).cpu().numpy()
            for request, vector in zip(chunk, pooled, strict=True):
                yield request, vector, tokens[request][1]
        self.cfg.timings.encode += time.perf_counter() - start

    # -- serving -------------------------------------------------------------------------------

    def _build_stores(self, entries: dict[Request, Entry], views: dict[str, int]) -> None:
        train = self.sources["train"]
        assert isinstance(train, TrainClips)
        self.train_arrays = [[entries[("train", v, k)][0] for k in range(self.train_views)]
                             for v in range(len(train.videos))]
        flipped = [[bool(entries[("train", v, k)][1].get("flipped")) for k in range(self.train_views)]
                   for v in range(len(train.videos))]
        labels = [[train.label_after_flip(v, f) for f in row] for v, row in enumerate(flipped)]
        self.train_labels = torch.tensor(labels, dtype=torch.long).reshape(-1, self.train_views)  # [videos, views]
        self.eval_stores: dict[str, tuple[list[np.ndarray], torch.Tensor, torch.Tensor]] = {}
        for split, source in self.sources.items():
            if split == "train":
                continue
            keys = [(split, v, k) for v in range(len(source.videos)) for k in range(views[split])]
            self.eval_stores[split] = ([entries[key][0] for key in keys],
                                       torch.tensor([source.label_of(v) for _, v, _ in keys], dtype=torch.long),
                                       torch.tensor([v for _, v, _ in keys], dtype=torch.long))

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        order, view = epoch_order(self.seed, epoch, len(self.train_arrays), self.train_views)
        for chunk in order.split(self.cfg.batch_size):
            picked = view[chunk]
            inputs = np.stack([self.train_arrays[v][k] for v, k in zip(chunk.tolist(), picked.tolist(), strict=True)])
            yield torch.from_numpy(inputs).float(), self.train_labels[chunk, picked], chunk

    def eval_batches(self, split: str) -> Iterator[Batch]:
        arrays, labels, videos = self.eval_stores[split]
        for start in range(0, len(arrays), self.cfg.batch_size):
            end = start + self.cfg.batch_size
            yield torch.from_numpy(np.stack(arrays[start:end])).float(), labels[start:end], videos[start:end]

    def views_per_video(self, split: str) -> int:
        return self.sources[split].views_per_video  # type: ignore[union-attr]

    def forward(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            return model.classifier(inputs)
        return model.classifier(model.pooler(inputs))

    def cache_report(self) -> dict[str, int]:
        """The run's cache columns: lookups that hit/missed, clips the encoder ran on, bytes of its groups."""
        caches = [c for c in (self.tokens, self.pooled_cache) if c is not None]
        return {"cache_hits": sum(c.stats.hits for c in caches), "cache_misses": sum(c.stats.misses for c in caches),
                "encoded_clips": self.encoded_clips, "cache_bytes": sum(c.size_bytes() for c in caches)}


def average_views(probs: np.ndarray, videos: np.ndarray, num_videos: int) -> np.ndarray:
    """Average softmax over each video's views: [views, classes] -> [videos, classes]."""
    out = np.zeros((num_videos, probs.shape[1]), dtype=np.float64)
    counts = np.zeros(num_videos)
    np.add.at(out, videos, probs)
    np.add.at(counts, videos, 1)
    return out / np.maximum(counts, 1)[:, None]


def default_workers() -> int:
    """DataLoader decode workers: half the CPUs (the encoder's threads need the rest), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))
