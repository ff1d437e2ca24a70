"""One experiment end to end: spec -> data -> model -> strategy -> fit -> metrics -> checkpoint -> record.

`run_experiment(spec, paths, options)` returns a `RunRecord` (the warehouse rows of the run) and
writes nothing to the warehouse itself: the caller (the runner's driver) is the only writer, which
keeps remote executors simple. `failed_record` builds the row of a run that raised.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import subprocess
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from vjepa_core import __version__
from vjepa_core.analysis.metrics import SplitReport, split_report
from vjepa_core.data import Splits, check_videos, discover_dataset, make_splits, make_synthetic, synthetic_dir
from vjepa_core.data.clips import ClipConfig, EvalClips, TrainClips
from vjepa_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vjepa_core.errors import UserError, WriteFailed
from vjepa_core.models import base_fingerprint, count_parameters, describe_model, load_run_model
from vjepa_core.models.device import PeakMemory, resolve_device, resolve_precision
from vjepa_core.paths import REPO_ROOT
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.checkpoint import checkpoint_dtype, save_checkpoint
from vjepa_core.store.warehouse import RunRecord
from vjepa_core.strategies import get_strategy
from vjepa_core.training.features import FeedConfig, PixelFeed, Timings, TokenFeed
from vjepa_core.training.loop import SplitScores, evaluate, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Paths:
    results: Path

    @property
    def checkpoints(self) -> Path:
        return self.results / "checkpoints"


def resolve_data(data: str, results: Path, *, progress: bool = False) -> str:
    """`synthetic` means the built-in generated set under results/; anything else is a path."""
    if data == "synthetic":
        return str(make_synthetic(synthetic_dir(results), progress=progress))
    return data


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
    options = options or ExecOptions()
    started = datetime.now()
    wall = time.perf_counter()
    device = resolve_device(options.device)
    precision = resolve_precision(spec.precision, device)
    strategy = get_strategy(spec.strategy)
    data = data or prepare_data(spec, paths.results, options)
    splits = data.splits
    labels = list(splits.classes)
    torch.manual_seed(spec.seed)
    model = load_run_model(spec, labels)
    base_fp = base_fingerprint(model)
    model = strategy.adapt(model, spec).to(device)
    trainable, total = count_parameters(model)
    clip_cfg = ClipConfig(spec.frames_per_clip, spec.frame_stride, model.config.crop_size, options.decoder)
    timings = Timings()
    feed_cfg = FeedConfig(device=device, precision=precision, batch_size=spec.batch_size,
                          num_workers=options.num_workers, progress=options.progress, timings=timings)
    with PeakMemory(device) as memory:
        # Views are seeded by the data's seed, not the training seed: every seed shares cached views.
        train = TrainClips(splits.train, labels, clip_cfg, view_seed=spec.split_seed, augment=spec.augment,
                           hflip=spec.hflip, flip_pairs=data.flip_pairs)
        evals = {split: EvalClips(getattr(splits, split), labels, clip_cfg, num_clips=spec.eval_clips,
                                  num_crops=spec.eval_crops) for split in ("val", "test")}
        if strategy.frozen_encoder and options.cache:
            feed = TokenFeed(model, train, evals, feed_cfg, seed=spec.seed, train_views=spec.train_views,
                             pooled=strategy.frozen_pooler, model_name=describe_model(spec.model),
                             cache_root=paths.results / "cache" if options.cache_on_disk else None)
        else:
            feed = PixelFeed(train, evals, feed_cfg, seed=spec.seed)
        steps = -(-len(splits.train) // spec.batch_size)
        fitted = fit(model, feed, spec, device=device, precision=precision, steps_per_epoch=steps,
                     progress=options.progress)
        eval_start = time.perf_counter()
        scores = {"val": fitted.best_val, "test": evaluate(model, feed, "test", device=device, precision=precision)}
        reports = {split: _report(split, scores[split], splits, labels) for split in ("val", "test")}
        eval_seconds = time.perf_counter() - eval_start
    inference_ms = measure_inference_ms(model, evals["test"], device, precision)
    test = reports["test"].summary
    metrics = {"test_acc": test["accuracy"], "test_macro_f1": test["macro_f1"],
               "best_val_acc": fitted.best_val_acc, "best_epoch": fitted.best_epoch}
    weights_dtype = checkpoint_dtype(options.checkpoint_dtype, precision=precision,
                                     frozen_encoder=strategy.frozen_encoder)
    checkpoint = save_checkpoint(paths.checkpoints / spec.run_id, model, spec=spec, labels=labels,
                                 base_fp=base_fp, preprocessing=preprocessing(spec, model.config.crop_size),
                                 metrics=metrics, weights_dtype=weights_dtype)
    run = {
        **base_row(spec, options, started), "dataset": data.name, "dataset_path": data.root,
        "num_classes": len(labels), "status": "success", "precision": precision, "device": str(device),
        "trainable_params": trainable, "total_params": total, "finished_at": datetime.now(),
        "train_seconds": time.perf_counter() - wall, **timings.as_dict(), "fit_seconds": fitted.seconds,
        "eval_seconds": eval_seconds, "peak_memory_bytes": memory.peak_bytes,
        "checkpoint_path": str(checkpoint), "test_acc": test["accuracy"], "test_macro_f1": test["macro_f1"],
        "test_loss": test["loss"], "best_val_acc": fitted.best_val_acc, "best_epoch": fitted.best_epoch,
        "train_acc": fitted.train_acc, "inference_ms": inference_ms, "num_train": len(splits.train),
        "num_val": len(splits.val), "num_test": len(splits.test), "videos_skipped": len(splits.skipped),
        "skipped_videos": [{"path": p, "reason": r} for p, r in splits.skipped],
        **(feed.cache_report() if isinstance(feed, TokenFeed) else {}),
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
    from vjepa_core.models.device import autocast

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


def base_row(spec: RunSpec, options: ExecOptions, started: datetime) -> dict[str, Any]:
    """The columns every run has, failed ones too."""
    return {
        "run_id": spec.run_id, "matrix_id": options.matrix_id, "strategy": spec.strategy,
        "model": describe_model(spec.model), "dataset": Path(spec.data).name or spec.data,
        "videos_per_class": spec.videos_per_class, "frames_per_clip": spec.frames_per_clip,
        "frame_stride": spec.frame_stride, "epochs": spec.epochs, "lr": spec.lr,
        "weight_decay": spec.weight_decay, "batch_size": spec.batch_size,
        "accumulation_steps": spec.accumulation_steps, "lora_rank": spec.lora_rank,
        "lora_alpha": spec.lora_alpha, "lora_dropout": spec.lora_dropout, "seed": spec.seed,
        "precision": spec.precision, "started_at": started, "git_sha": git_sha(), "versions": versions(),
        "spec": spec.to_dict(),
    }


def failed_record(spec: RunSpec, options: ExecOptions, started: datetime, error: BaseException) -> RunRecord:
    """The row of a run that raised `error`: its one-line message (the exception's type too, unless a
    user can act on the message alone) and its kind (`storage` when the disk refused a write)."""
    message = str(error) if isinstance(error, UserError | WriteFailed) else "".join(
        traceback.format_exception_only(type(error), error)).strip()
    run = {**base_row(spec, options, started), "status": "failed", "error": message,
           "error_kind": "storage" if isinstance(error, WriteFailed) else "error", "finished_at": datetime.now(),
           "train_seconds": (datetime.now() - started).total_seconds()}
    return RunRecord(run=run)


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    import peft
    import torchvision
    import transformers

    return {"vjepa_lab": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}

