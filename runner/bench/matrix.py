"""`runner bench`'s workload: the four frozen-backbone strategies, run the naive way and our way, in one process.

- naive (the original study): every strategy decodes and runs the frozen encoder on every clip,
  every step, at batch 1, in fp32, with no cache (`PixelFeed`, `ExecOptions(cache=False)`).
- ours (the real matrix path): `run_experiment` per strategy with the on-disk token cache shared
  by all four (cold at the start), batched encoder passes and decoding in DataLoader workers.
- lower bound, measured from its parts in a separate pass: one batched encoder pass per cached
  view + one frozen-pooler pass per view (for `head`'s pooled vectors) + the trainable parts'
  steps (fit + evaluation on cached inputs, as our runs measured them).

`run_bench(Workload(...), work_dir)` returns a flat dict (the `--json` of `runner bench`): wall
times per arm, `speedup_<E>_epochs` for the measured epochs and for 5 and 20 (a run's wall is
its fixed part + E x its mean epoch time, both measured; other epoch counts are extrapolated
from them, and `extrapolated` says which), `wall_over_bound`, `decode_clips_per_s` (decode +
preprocess, with the workers) and `encoder_clips_per_s`, and `peak_memory_bytes` (process RSS).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vjepa_core.data import SYNTHETIC_CLASSES, make_synthetic
from vjepa_core.data.clips import ClipConfig, EvalClips, TrainClips
from vjepa_core.models import load_model
from vjepa_core.models.device import PeakMemory, autocast, resolve_device, resolve_precision
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.strategies import STRATEGIES
from vjepa_core.training.experiment import Paths, PreparedData, prepare_data, run_experiment
from vjepa_core.training.features import FeedConfig, VideoJobs, default_workers, make_loader

# The strategies whose encoder is frozen: the ones the token cache serves.
FROZEN_STRATEGIES = tuple(name for name, strategy in STRATEGIES.items() if strategy.frozen_encoder)


@dataclass(frozen=True)
class Workload:
    model: str = "small"
    strategies: tuple[str, ...] = FROZEN_STRATEGIES
    classes: int = 6
    train_per_class: int = 6
    eval_per_class: int = 2           # videos per class in val, and again in test
    epochs: int = 5
    naive_epochs: int | None = None   # fewer than `epochs` to save time: the naive arm is then extrapolated
    train_views: int = 4
    batch_size: int = 8
    frames_per_clip: int = 16
    workers: int = field(default_factory=default_workers)
    encode_batch_size: int = 8

    def spec(self, strategy: str, data: Path) -> RunSpec:
        total = self.train_per_class + 2 * self.eval_per_class
        return RunSpec(strategy=strategy, model=self.model, data=str(data), epochs=self.epochs,
                       batch_size=self.batch_size, train_views=self.train_views,
                       frames_per_clip=self.frames_per_clip, val_fraction=self.eval_per_class / total,
                       test_fraction=self.eval_per_class / total)


def run_bench(workload: Workload, work_dir: Path, *, progress: bool = False) -> dict[str, Any]:
    work_dir = Path(work_dir)
    data_dir = make_synthetic(work_dir / "data", classes=SYNTHETIC_CLASSES[:workload.classes],
                              videos_per_class=workload.train_per_class + 2 * workload.eval_per_class)
    specs = [workload.spec(strategy, data_dir) for strategy in workload.strategies]
    prepared = prepare_data(specs[0], work_dir, ExecOptions(progress=False))
    with PeakMemory(torch.device("cpu")) as memory:
        ours = _arm(specs, work_dir / "ours", prepared,
                    ExecOptions(num_workers=workload.workers, progress=progress))
        naive_epochs = workload.naive_epochs or workload.epochs
        naive_specs = [s.replace(batch_size=1, precision="fp32", epochs=naive_epochs) for s in specs]
        naive = _arm(naive_specs, work_dir / "naive", prepared, ExecOptions(cache=False, progress=progress))
        bound = _bound_parts(specs[0], prepared, workload)
    return _summary(workload, ours=ours, naive=naive, bound=bound, peak=memory.peak_bytes)


def _arm(specs: list[RunSpec], results: Path, data: PreparedData, options: ExecOptions) -> dict[str, Any]:
    """Run every spec in turn; wall time and each run's row (time split, epochs)."""
    start = time.perf_counter()
    runs = []
    for spec in specs:
        record = run_experiment(spec, Paths(results), options, data)
        runs.append({**record.run, "epoch_seconds": [row["seconds"] for row in record.epochs]})
    return {"wall": time.perf_counter() - start, "runs": runs}


@torch.no_grad()
def _bound_parts(spec: RunSpec, data: PreparedData, workload: Workload) -> dict[str, float]:
    """Decode every cached view once (timed), then time one batched encoder and pooler pass per view."""
    labels = list(data.splits.classes)
    device = resolve_device("auto")
    precision = resolve_precision(spec.precision, device)
    model = load_model(spec.model, labels).to(device)
    clip_cfg = ClipConfig(spec.frames_per_clip, spec.frame_stride, model.config.crop_size)
    sources = {"train": TrainClips(data.splits.train, labels, clip_cfg, view_seed=spec.split_seed,
                                   augment=spec.augment, hflip=spec.hflip, flip_pairs=data.flip_pairs),
               **{split: EvalClips(getattr(data.splits, split), labels, clip_cfg) for split in ("val", "test")}}
    jobs = VideoJobs(sources, [(split, video, list(range(spec.train_views if split == "train" else 1)))
                                for split, source in sources.items() for video in range(len(source.videos))])
    cfg = FeedConfig(device=device, precision=precision, batch_size=spec.batch_size,
                     num_workers=workload.workers, encode_batch_size=workload.encode_batch_size)
    start, views, sample = time.perf_counter(), 0, []
    for items in make_loader(jobs, cfg, batch_size=None):
        views += len(items)
        sample.extend(clip for _, clip, _ in items[:cfg.encode_batch_size - len(sample)])
    decode_seconds = time.perf_counter() - start
    batch = torch.stack(sample).to(device)
    encode_seconds = pool_seconds = 0.0
    for first in range(0, views, cfg.encode_batch_size):
        clips = batch[:min(cfg.encode_batch_size, views - first)]
        start = time.perf_counter()
        with autocast(device, precision):
            tokens = model.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
        tokens = tokens.to(torch.float16).cpu()  # as the cache stores them (and a sync point on GPUs)
        encode_seconds += time.perf_counter() - start
        start = time.perf_counter()
        with autocast(device, precision):
            model.pooler(tokens.float().to(device)).cpu()
        pool_seconds += time.perf_counter() - start
    return {"views": views, "decode_seconds": decode_seconds, "encode_seconds": encode_seconds,
            "pool_seconds": pool_seconds}


def _wall_at(run: dict[str, Any], epochs: int) -> float:
    """A run's wall time at `epochs`: its measured fixed part + epochs x its measured mean epoch."""
    per_epoch = sum(run["epoch_seconds"]) / len(run["epoch_seconds"])
    return run["train_seconds"] - sum(run["epoch_seconds"]) + epochs * per_epoch


def _summary(workload: Workload, *, ours: dict[str, Any], naive: dict[str, Any], bound: dict[str, float],
             peak: int) -> dict[str, Any]:
    trainable = sum(r["fit_seconds"] + r["eval_seconds"] for r in ours["runs"])
    pools = any(STRATEGIES[name].frozen_pooler for name in workload.strategies)  # pooled vectors cached too
    lower_bound = bound["encode_seconds"] + (bound["pool_seconds"] if pools else 0.0) + trainable
    naive_epochs = workload.naive_epochs or workload.epochs
    out: dict[str, Any] = {
        "workload": asdict(workload), "ours_wall_seconds": ours["wall"], "naive_wall_seconds": naive["wall"],
        "naive_measured_epochs": naive_epochs, "lower_bound_seconds": lower_bound,
        "wall_over_bound": ours["wall"] / lower_bound,
        "bound_encode_seconds": bound["encode_seconds"], "bound_pool_seconds": bound["pool_seconds"],
        "bound_trainable_seconds": trainable, "cached_views": bound["views"],
        "decode_clips_per_s": bound["views"] / bound["decode_seconds"],
        "encoder_clips_per_s": bound["views"] / bound["encode_seconds"],
        "peak_memory_bytes": peak, "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "ours_runs": [_split(r) for r in ours["runs"]], "naive_runs": [_split(r) for r in naive["runs"]],
    }
    for epochs in sorted({workload.epochs, 5, 20}):
        naive_total = sum(_wall_at(r, epochs) for r in naive["runs"])
        ours_total = sum(_wall_at(r, epochs) for r in ours["runs"])
        out[f"speedup_{epochs}_epochs"] = naive_total / ours_total
        out[f"naive_seconds_{epochs}_epochs"] = naive_total
        out[f"ours_seconds_{epochs}_epochs"] = ours_total
    out["extrapolated"] = {f"{e}_epochs": {"naive": e != naive_epochs, "ours": e != workload.epochs}
                           for e in sorted({workload.epochs, 5, 20})}
    return out


def _split(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("strategy", "train_seconds", "decode_seconds", "encode_seconds", "fit_seconds", "eval_seconds",
            "cache_hits", "cache_misses", "encoded_clips", "cache_bytes", "test_acc", "peak_memory_bytes")
    return {key: run.get(key) for key in keys}
