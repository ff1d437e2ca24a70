"""One experiment end to end: spec -> data -> model -> strategy -> fit -> metrics -> checkpoint -> `RunRecord`.

A run returns its warehouse rows and writes none: the caller (the runner's driver) is the warehouse's only
writer, which keeps remote executors simple. `prepare_data` finds, probes and splits the data once (every bad
input shows there), and `run_experiments` trains a joint group (`training.joint`) side by side over one pass of
the cached tokens, with the same records as one run at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from vjepa_core.analysis.metrics import SplitReport, split_report
from vjepa_core.data import Splits, check_videos, discover_dataset, make_splits, resolve_data
from vjepa_core.data.clips import ClipConfig, EvalClips, TrainClips
from vjepa_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vjepa_core.errors import UserError, WriteFailed, error_message
from vjepa_core.models import base_fingerprint, count_parameters, describe_model, load_run_model
from vjepa_core.models.device import PeakMemory, autocast, resolve_device, resolve_precision
from vjepa_core.provenance import provenance_columns
from vjepa_core.spec import ExecOptions, RunSpec, spec_columns
from vjepa_core.store.checkpoint import checkpoint_dtype, save_checkpoint
from vjepa_core.store.warehouse import RunRecord
from vjepa_core.strategies import get_strategy
from vjepa_core.training.features import FeedConfig, PixelFeed, Timings, TokenFeed
from vjepa_core.training.joint import joinable, joint_key
from vjepa_core.training.loop import FitResult, SplitScores, evaluate, fit_together

log = logging.getLogger(__name__)
Feed = PixelFeed | TokenFeed  # what the trainable part eats (training.features)


@dataclass(frozen=True)
class Paths:
    results: Path

    @property
    def checkpoints(self) -> Path:
        return self.results / "checkpoints"


@dataclass(frozen=True)
class PreparedData:
    splits: Splits
    name: str
    root: str
    flip_pairs: dict[str, str]


def prepare_data(spec: RunSpec, results: Path, options: ExecOptions) -> PreparedData:
    """Discover, probe (skipping corrupt files) and split the dataset: all a run's bad input shows here."""
    source = discover_dataset(resolve_data(spec.data, results, progress=options.progress))
    good, skipped = check_videos(source.items, decoder=options.decoder, progress=options.progress)
    if not good:
        raise UserError(f"data: none of the {len(source.items)} videos in {source.root} could be decoded")
    source = dataclasses.replace(source, items=tuple(good))
    splits = make_splits(source, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction,
                         split_seed=spec.split_seed, videos_per_class=spec.videos_per_class)
    return PreparedData(dataclasses.replace(splits, skipped=tuple(skipped)), source.name, source.root,
                        dict(source.flip_pairs))


def run_experiment(spec: RunSpec, paths: Paths, options: ExecOptions | None = None,
                   data: PreparedData | None = None) -> RunRecord:
    return run_experiments([spec], paths, options, data)[0]


def run_experiments(specs: Sequence[RunSpec], paths: Paths, options: ExecOptions | None = None,
                    data: PreparedData | None = None) -> list[RunRecord]:
    """Train `specs` side by side (one group of `joint_groups`, or a single spec): one model load, one
    cache fill, one pass over the batches per epoch for all. Each run ends as it would alone and gets
    its own record and checkpoint; timings shared by the group are split between its runs."""
    options = options or ExecOptions()
    if len({joint_key(spec) for spec in specs}) != 1 or (len(specs) > 1 and not joinable(specs[0], options)):
        raise ValueError("run_experiments trains a group of joint_groups together, or one spec")
    started, wall = datetime.now(), time.perf_counter()
    first = specs[0]
    device = resolve_device(options.device)
    precision = resolve_precision(first.precision, device)
    data = data or prepare_data(first, paths.results, options)
    labels = list(data.splits.classes)
    base = load_run_model(first, labels).to(device)
    base_fp = base_fingerprint(base)
    timings = Timings()
    with PeakMemory(device) as memory:
        feed, evals = _make_feed(first, base, data, paths, options, timings=timings, device=device,
                                 precision=precision)
        models = []
        for spec in specs:
            torch.manual_seed(spec.seed)  # LoRA adapters draw their initial weights from it
            model = base if len(specs) == 1 else copy.deepcopy(base, memo={id(base.vjepa2): base.vjepa2})
            models.append(get_strategy(spec.strategy).adapt(model, spec).to(device))
        setup_seconds = time.perf_counter() - wall
        steps = -(-len(data.splits.train) // first.batch_size)
        fitted = fit_together(models, list(specs), feed, device=device, precision=precision, steps_per_epoch=steps,
                              progress=options.progress)
        start = time.perf_counter()
        inference_ms = measure_inference_ms(models[0], evals["test"], device, precision)  # one architecture
        shared = _Shared(data=data, labels=labels, device=device, precision=precision, options=options,
                         started=started, base_fp=base_fp, runs=len(specs), inference_ms=inference_ms,
                         shared_seconds=setup_seconds + time.perf_counter() - start, timings=timings.as_dict(),
                         cache=feed.cache_report() if isinstance(feed, TokenFeed) else {})
        records = [_evaluate_and_save(spec, model, result, feed, shared, paths, first=i == 0)
                   for i, (spec, model, result) in enumerate(zip(specs, models, fitted, strict=True))]
    for record in records:
        record.run["peak_memory_bytes"] = memory.peak_bytes
    return records


def _make_feed(spec: RunSpec, model: torch.nn.Module, data: PreparedData, paths: Paths, options: ExecOptions, *,
               timings: Timings, device: torch.device, precision: str) -> tuple[Feed, dict[str, EvalClips]]:
    """Pixels, or the frozen encoder's cached tokens (pooled vectors when the pooler is frozen too)."""
    strategy, splits, labels = get_strategy(spec.strategy), data.splits, list(data.splits.classes)
    clip_cfg = ClipConfig(spec.frames_per_clip, spec.frame_stride, model.config.crop_size, options.decoder)
    feed_cfg = FeedConfig(device=device, precision=precision, batch_size=spec.batch_size,
                          num_workers=options.num_workers, progress=options.progress, timings=timings)
    # Views are seeded by the data's seed, not the training seed: every seed shares cached views.
    train = TrainClips(splits.train, labels, clip_cfg, view_seed=spec.split_seed, augment=spec.augment,
                       hflip=spec.hflip, flip_pairs=data.flip_pairs)
    evals = {split: EvalClips(getattr(splits, split), labels, clip_cfg, num_clips=spec.eval_clips,
                              num_crops=spec.eval_crops) for split in ("val", "test")}
    if not (strategy.frozen_encoder and options.cache):
        return PixelFeed(train, evals, feed_cfg, seed=spec.seed), evals
    feed = TokenFeed(model, train, evals, feed_cfg, seed=spec.seed, train_views=spec.train_views,
                     pooled=strategy.frozen_pooler, model_name=describe_model(spec.model),
                     cache_root=paths.results / "cache" if options.cache_on_disk else None)
    return feed, evals


@dataclass(frozen=True)
class _Shared:
    """What the runs of one group share: data, device, the shared setup, measurements made once."""

    data: PreparedData
    labels: list[str]
    device: torch.device
    precision: str
    options: ExecOptions
    started: datetime
    base_fp: str
    runs: int
    shared_seconds: float  # model load, cache fill, adapters, the inference-latency probe
    timings: dict[str, float]
    cache: dict[str, int]
    inference_ms: float

    def cache_columns(self, *, first: bool) -> dict[str, Any]:
        """The group's first run filled the cache; the others read it, as they would have after it."""
        if first or not self.cache:
            return {**self.timings, **self.cache}
        lookups = self.cache["cache_hits"] + self.cache["cache_misses"]
        return {**dict.fromkeys(self.timings, 0.0), **self.cache, "cache_hits": lookups, "cache_misses": 0,
                "encoded_clips": 0}


def _evaluate_and_save(spec: RunSpec, model: torch.nn.Module, fitted: FitResult, feed: Feed,
            shared: _Shared, paths: Paths, *, first: bool) -> RunRecord:
    """Score one trained run on test, save its checkpoint and build its rows."""
    start = time.perf_counter()
    splits, labels = shared.data.splits, shared.labels
    scores = {"val": fitted.best_val, "test": evaluate(model, feed, "test", device=shared.device,
                                                       precision=shared.precision)}
    reports = {split: _report(split, scores[split], splits, labels) for split in ("val", "test")}
    eval_seconds = time.perf_counter() - start
    test = reports["test"].summary
    metrics = {"test_acc": test["accuracy"], "test_macro_f1": test["macro_f1"],
               "best_val_acc": fitted.best_val_acc, "best_epoch": fitted.best_epoch}
    weights_dtype = checkpoint_dtype(shared.options.checkpoint_dtype, precision=shared.precision,
                                     frozen_encoder=get_strategy(spec.strategy).frozen_encoder)
    checkpoint = save_checkpoint(paths.checkpoints / spec.run_id, model, spec=spec, labels=labels,
                                 base_fp=shared.base_fp, preprocessing=preprocessing(spec, model.config.crop_size),
                                 metrics=metrics, weights_dtype=weights_dtype)
    trainable, total = count_parameters(model)
    own_seconds = fitted.seconds + time.perf_counter() - start
    run = {
        **_run_columns(spec, shared.options, shared.started), "dataset": shared.data.name,
        "dataset_path": shared.data.root, "num_classes": len(labels), "status": "success",
        "precision": shared.precision, "device": str(shared.device), "trainable_params": trainable,
        "total_params": total, "finished_at": datetime.now(),
        "train_seconds": shared.shared_seconds / shared.runs + own_seconds, **shared.cache_columns(first=first),
        "fit_seconds": fitted.seconds, "eval_seconds": eval_seconds, "checkpoint_path": str(checkpoint),
        "test_acc": test["accuracy"], "test_macro_f1": test["macro_f1"], "test_loss": test["loss"],
        "best_val_acc": fitted.best_val_acc, "best_epoch": fitted.best_epoch, "train_acc": fitted.train_acc,
        "inference_ms": shared.inference_ms, "num_train": len(splits.train), "num_val": len(splits.val),
        "num_test": len(splits.test), "videos_skipped": len(splits.skipped),
        "skipped_videos": [{"path": p, "reason": r} for p, r in splits.skipped],
    }
    return RunRecord(
        run=run, epochs=fitted.epochs,
        class_metrics=[row for r in reports.values() for row in r.class_metrics],
        confusion=[row for r in reports.values() for row in r.confusion],
        predictions=[row for r in reports.values() for row in r.predictions],
    )


def _report(split: str, scores: SplitScores, splits: Splits, labels: list[str]) -> SplitReport:
    videos = [item.path for item in getattr(splits, split)]
    return split_report(split, scores.probs, scores.labels, classes=labels, videos=videos, loss=scores.loss)


@torch.no_grad()
def measure_inference_ms(model: torch.nn.Module, clips: EvalClips, device: torch.device, precision: str,
                         *, videos: int = 4) -> float:
    """Mean ms per video for the whole model (encoder + pooler + head) at batch 1, decode excluded."""
    model.eval()
    inputs = [clips[i * clips.views_per_video][0] for i in range(min(videos, len(clips.videos)))]
    if not inputs:
        return 0.0
    times = []
    for clip in [inputs[0], *inputs]:  # the first pass warms up kernels and is not counted
        start = time.perf_counter()
        with autocast(device, precision):
            model(pixel_values_videos=clip[None].to(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * sum(times[1:]) / len(times[1:])


def preprocessing(spec: RunSpec, crop_size: int) -> dict[str, Any]:
    return {"crop_size": crop_size, "resize_shortest_edge": int(crop_size * 256 / 224),
            "frames_per_clip": spec.frames_per_clip, "frame_stride": spec.frame_stride,
            "eval_clips": spec.eval_clips, "eval_crops": spec.eval_crops,
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def _run_columns(spec: RunSpec, options: ExecOptions, started: datetime) -> dict[str, Any]:
    """The columns every run has, failed ones too: what was asked for, when, and by which code."""
    return {
        "run_id": spec.run_id, "matrix_id": options.matrix_id, **spec_columns(spec),
        # The model column names what was loaded (a preset, a folder's absolute path); the dataset its name.
        "model": describe_model(spec.model), "dataset": Path(spec.data).name or spec.data,
        "started_at": started, "spec": spec.to_dict(), **provenance_columns(),
    }


def failed_run_record(spec: RunSpec, options: ExecOptions, started: datetime, error: BaseException) -> RunRecord:
    """The row of a run that raised `error`: its one-line message (the exception's type too, unless a
    user can act on the message alone) and its kind (`storage` when the disk refused a write)."""
    run = {**_run_columns(spec, options, started), "status": "failed", "error": error_message(error),
           "error_kind": "storage" if isinstance(error, WriteFailed) else "error", "finished_at": datetime.now(),
           "train_seconds": (datetime.now() - started).total_seconds()}
    return RunRecord(run=run)
