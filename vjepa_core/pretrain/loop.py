"""`runner pretrain`'s engine: unlabelled videos -> a better V-JEPA 2 base, as a `save_pretrained` folder.

`prepare` checks everything (videos long enough to clip, a V-JEPA 2 model, masks possible on its token grid,
the probe set) and writes nothing; `pretrain` trains and returns the warehouse rows. Its output,
`results/pretrained/<id>/` (id: the spec and the videos' fingerprint), holds the EMA target encoder of the kept
epoch and the predictor, loadable as `--model`, and a `manifest.json` written last; the kept epoch is the best
on the probe when there is one (the loss is only a proxy), else the last. A killed run resumes (`state`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import VJEPA2Model
from transformers.utils import logging as hf_logging

from vjepa_core.data import VideoItem, check_videos, discover_dataset, make_splits, probe_video
from vjepa_core.data.clips import ClipConfig, EvalClips, TrainClips
from vjepa_core.data.videosets import VideoSet, check_video_set, find_videos
from vjepa_core.errors import UserError, error_message
from vjepa_core.models import describe_model, load_config, load_model
from vjepa_core.models.device import PeakMemory, autocast, resolve_device, resolve_precision
from vjepa_core.models.vjepa21 import is_vjepa21
from vjepa_core.pretrain.diagnostics import attentive_probe, effective_rank, embedding_std
from vjepa_core.pretrain.masks import BlockMask, check_masks, expected_masked, parse_masks, sample_masks, token_grid
from vjepa_core.pretrain.objective import ema_momentum, ema_update, jepa_loss, make_target_encoder
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.pretrain.state import TrainState, load_latest_state, save_state
from vjepa_core.progress import progress_bar, progress_write
from vjepa_core.provenance import provenance_columns
from vjepa_core.store.atomic import staged_dir, staged_file, sweep, write_text
from vjepa_core.training.features import QuietWorkersLoader
from vjepa_core.training.loop import lr_factor

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
WORK = ".train"
DIAGNOSTIC_CLIPS = 64  # fixed clips for std / rank when no probe set is given


@dataclass(frozen=True)
class PretrainOptions:
    """How a pretraining run executes; none of it changes its weights."""

    device: str = "auto"
    decoder: str = "auto"
    num_workers: int = 0
    progress: bool = True
    force: bool = False


@dataclass
class Prepared:
    spec: PretrainSpec
    videos: list[VideoItem]
    skipped: list[tuple[str, str]]
    data_fingerprint: str
    masks: tuple[BlockMask, ...]
    grid: tuple[int, int, int]
    model: VJEPA2Model
    probe: tuple[list[VideoItem], list[VideoItem], list[str]] | None  # probe train, probe val, classes

    @property
    def pretrain_id(self) -> str:
        return self.spec.pretrain_id(self.data_fingerprint)


@dataclass
class PretrainRecord:
    """What the warehouse stores: one row for the run, one per epoch (epoch 0 = the starting model)."""

    run: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    directory: Path | None = None
    resumed_from: int = 0


def pretrain_dir(results: Path) -> Path:
    return Path(results) / "pretrained"


# ---- validation: everything that can be wrong with the input, before anything is written ----------------

def prepare(spec: PretrainSpec, *, videos: VideoSet, probe_items: tuple[list[VideoItem], list[VideoItem],
            list[str]] | None, options: PretrainOptions) -> Prepared:
    """Check videos, model, masks and probe set; UserError (nothing written) for any bad input. Files that
    do not decode or are shorter than a clip are skipped, each with its reason, in `Prepared.skipped`."""
    refuse_vjepa21(spec.model)
    checked = check_video_set(videos, decoder=options.decoder, progress=options.progress)
    good, skipped = list(checked.items), list(checked.skipped)
    long_enough = [item for item in good if probe_video(item.path, decoder=options.decoder).num_frames
                   >= spec.frames_per_clip]
    skipped += [(item.path, f"shorter than frames_per_clip={spec.frames_per_clip}")
                for item in good if item not in long_enough]
    if not long_enough:
        raise UserError(f"data: every video is shorter than frames_per_clip={spec.frames_per_clip} frames; "
                        f"lower --frames-per-clip or use longer clips")
    model = load_model(spec.model, ["unused"], seed=spec.seed).vjepa2
    config = model.config
    grid = token_grid(spec.frames_per_clip, tubelet_size=config.tubelet_size, crop_size=config.crop_size,
                      patch_size=config.patch_size)
    masks = parse_masks(spec.masks)
    check_masks(masks, grid)
    return Prepared(spec=spec, videos=long_enough, skipped=skipped, data_fingerprint=data_fingerprint(long_enough),
                    masks=masks, grid=grid, model=model, probe=probe_items)


def refuse_vjepa21(model: str) -> None:
    """V-JEPA 2.1 learnt with another objective than this module's: continuing it with V-JEPA 2's would not be
    continued pretraining (one line, before anything is read or written)."""
    if is_vjepa21(load_config(model)):
        raise UserError(f"pretrain: {model} is a V-JEPA 2.1 encoder, and runner pretrain implements V-JEPA 2's "
                        f"objective (masked tokens only, the last level, the model's own predictor); 2.1 learnt "
                        f"with a dense loss over every token at four levels and a predictor this lab does not "
                        f"port: continue it with Meta's app/vjepa_2_1 training, then pass its checkpoint as --model")


def read_videos(data: str) -> VideoSet:
    """Every video `data` names, in any layout `vjepa_core.data.videosets` reads, sorted by path. Labels, where
    the layout has them, never reach the objective; they only seed each video's augmentation draws."""
    found = find_videos(data)
    return dataclasses.replace(found, items=tuple(sorted(found.items, key=lambda item: item.path)))


def read_probe_set(data: str, *, seed: int = 0) -> tuple[list[VideoItem], list[VideoItem], list[str]]:
    """(probe train, probe val, classes) of a labelled set: its train and val splits, never its test split."""
    source = discover_dataset(data)
    if len(source.classes) < 2:
        raise UserError(f"probe data: {data} has {len(source.classes)} class; a probe needs at least 2")
    good, _ = check_videos(source.items)
    if not good:
        raise UserError(f"probe data: none of the videos in {data} could be decoded")
    splits = make_splits(dataclasses.replace(source, items=tuple(good)), split_seed=seed)
    return list(splits.train), list(splits.val), list(source.classes)


def data_fingerprint(videos: list[VideoItem]) -> str:
    """Hash of the videos' names, sizes and modification times: a changed file is a new dataset."""
    digest = hashlib.sha256()
    for item in sorted(videos, key=lambda v: v.path):
        stat = os.stat(item.path)
        digest.update(f"{Path(item.path).name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# ---- training -----------------------------------------------------------------------------------------------

class _EpochClips(Dataset):
    """Clip i of an epoch: video i % n, its (i // n)-th augmented draw of this epoch."""

    def __init__(self, clips: TrainClips, *, epoch_seed: int, clips_per_video: int) -> None:
        self.clips, self.epoch_seed, self.clips_per_video = clips, epoch_seed, clips_per_video

    def __len__(self) -> int:
        return len(self.clips) * self.clips_per_video

    def __getitem__(self, index: int) -> torch.Tensor:
        video, draw = index % len(self.clips), index // len(self.clips)
        return self.clips.make_views(video, [self.epoch_seed * 16 + draw])[0][0]


def pretrain(prepared: Prepared, results: Path, options: PretrainOptions) -> PretrainRecord:
    spec = prepared.spec
    out = pretrain_dir(results) / prepared.pretrain_id
    if (out / MANIFEST).is_file() and not options.force:
        return _record_from_manifest(out)
    if options.force and out.exists():
        shutil.rmtree(out)
    started, wall = datetime.now(), time.perf_counter()
    device = resolve_device(options.device)
    precision = resolve_precision(spec.precision, device)
    torch.manual_seed(spec.seed)
    model = prepared.model.to(device)
    target = make_target_encoder(model)
    config = model.config
    clip_cfg = ClipConfig(spec.frames_per_clip, spec.frame_stride, config.crop_size, options.decoder)
    # Labels (None in a set read without them) only seed each video's augmentation draws, never a loss.
    labels = sorted({v.label for v in prepared.videos}, key=str)
    train = TrainClips(prepared.videos, labels, clip_cfg, view_seed=spec.seed, augment=True, hflip=True)
    train.augmenter.scale = (spec.crop_scale, 1.0)
    probe = _ProbeClips(prepared, clip_cfg)
    steps_per_epoch = math.ceil(len(prepared.videos) * spec.clips_per_video / spec.batch_size)
    total_steps = steps_per_epoch * spec.epochs
    optimizer = _optimizer(model, spec)
    work = out / WORK
    sweep(work)  # what a killed run was writing
    state = load_latest_state(work)
    if state is None:
        history = [{"epoch": 0, "loss": None, "seconds": 0.0, "lr": 0.0, "momentum": spec.ema_start,
                    **probe.diagnose(target, device, precision)}]
        step, first_epoch, best_epoch = 0, 1, 0
    else:
        model.load_state_dict(state.online)
        target.load_state_dict(state.target)
        optimizer.load_state_dict(state.optimizer)
        history, step, first_epoch, best_epoch = state.history, state.step, state.epoch + 1, state.best_epoch
        log.info("resuming %s after epoch %d of %d", out, state.epoch, spec.epochs)
    resumed_from = first_epoch - 1
    with PeakMemory(device) as memory:
        for epoch in range(first_epoch, spec.epochs + 1):
            start = time.perf_counter()
            loss, step = _train_epoch(prepared, model, target, optimizer, train, epoch=epoch, step=step,
                                      total_steps=total_steps, device=device, precision=precision, options=options)
            row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - start,
                   "lr": optimizer.param_groups[0]["lr"],
                   "momentum": ema_momentum(step, total_steps, start=spec.ema_start, end=spec.ema_end),
                   **probe.diagnose(target, device, precision)}
            history.append(row)
            if _is_better(row, history, best_epoch):
                best_epoch = epoch
                _save_weights(work / "best", model, target)
            save_state(work, TrainState(epoch=epoch, step=step, history=history, best_epoch=best_epoch,
                                        online=model.state_dict(), target=target.state_dict(),
                                        optimizer=optimizer.state_dict()))
            _print_epoch(row, spec.epochs, options.progress)
    if not (work / "best").is_dir():  # zero epochs trained here and none before: keep the starting weights
        _save_weights(work / "best", model, target)
    record = _success_record(prepared, history, best_epoch, started=started, seconds=time.perf_counter() - wall,
                             peak=memory.peak_bytes, device=device, precision=precision, directory=out)
    _complete_folder(out, work, record)
    record.resumed_from = resumed_from
    return record


def _train_epoch(prepared: Prepared, model: VJEPA2Model, target: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 train: TrainClips, *, epoch: int, step: int, total_steps: int, device: torch.device,
                 precision: str, options: PretrainOptions) -> tuple[float, int]:
    """One pass over the videos; returns (mean loss, global step after it)."""
    spec = prepared.spec
    model.train()
    clips = _EpochClips(train, epoch_seed=spec.seed * 1000 + epoch, clips_per_video=spec.clips_per_video)
    order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(spec.seed * 1000 + epoch))
    loader = QuietWorkersLoader(clips, batch_size=spec.batch_size, sampler=order.tolist(),
                                num_workers=options.num_workers, pin_memory=device.type == "cuda")
    mask_rng = np.random.default_rng([spec.seed, epoch])
    warmup = int(spec.warmup_ratio * total_steps)
    losses = []
    bar = progress_bar(loader, desc=f"pretrain epoch {epoch}/{spec.epochs}", unit="step", enabled=options.progress)
    for pixels in bar:
        for group in optimizer.param_groups:
            group["lr"] = spec.lr * lr_factor(step, total_steps, warmup_steps=warmup, schedule="cosine")
        masks = sample_masks(prepared.masks, prepared.grid, len(pixels), mask_rng)
        with autocast(device, precision):
            loss = jepa_loss(model, target, pixels.to(device, non_blocking=True), masks)
        if not torch.isfinite(loss):
            raise RuntimeError(f"pretraining loss is {loss.item()} at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        optimizer.step()
        ema_update(target, model.encoder, ema_momentum(step, total_steps, start=spec.ema_start, end=spec.ema_end))
        step += 1
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    return float(np.mean(losses)), step


def _optimizer(model: VJEPA2Model, spec: PretrainSpec) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and the predictor's mask tokens."""
    decay = [p for p in model.parameters() if p.ndim >= 2 and p.requires_grad]
    rest = [p for p in model.parameters() if p.ndim < 2 and p.requires_grad]
    mask_tokens = {id(p) for p in model.predictor.embeddings.parameters() if p.ndim == 4}
    decay, rest = [p for p in decay if id(p) not in mask_tokens], rest + [p for p in decay if id(p) in mask_tokens]
    return torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=spec.lr)


def _is_better(row: dict[str, Any], history: list[dict[str, Any]], best_epoch: int) -> bool:
    """Keep the epoch with the best probe accuracy (ties: the later one); without a probe, the last."""
    if row.get("probe_acc") is None:
        return True
    best = next((r for r in history if r["epoch"] == best_epoch and r["epoch"] > 0), None)
    return best is None or row["probe_acc"] >= best["probe_acc"]


# ---- diagnostics ------------------------------------------------------------------------------------------

class _ProbeClips:
    """The fixed clips diagnostics run on: the probe set (train + val) or the first pretraining videos."""

    def __init__(self, prepared: Prepared, clip_cfg: ClipConfig) -> None:
        if prepared.probe is not None:
            train, val, classes = prepared.probe
            self.items, self.num_train, self.classes = train + val, len(train), classes
        else:
            self.items, self.num_train, self.classes = prepared.videos[:DIAGNOSTIC_CLIPS], 0, []
        labels = self.classes or sorted({v.label for v in self.items}, key=str)
        self.clips = EvalClips(self.items, labels, clip_cfg)
        self.labels = torch.tensor([self.clips.label_of(i) for i in range(len(self.items))])
        self._pixels: torch.Tensor | None = None

    def pixels(self) -> torch.Tensor:
        if self._pixels is None:  # decoded once: the same clips every epoch
            self._pixels = torch.stack([self.clips[i][0] for i in range(len(self.clips))])
        return self._pixels

    @torch.no_grad()
    def diagnose(self, encoder: torch.nn.Module, device: torch.device, precision: str) -> dict[str, Any]:
        encoder.eval()
        tokens = []
        for batch in self.pixels().split(16):
            with autocast(device, precision):
                tokens.append(encoder(pixel_values_videos=batch.to(device)).last_hidden_state.float().cpu())
        tokens_all = torch.cat(tokens)
        row: dict[str, Any] = {"embedding_std": embedding_std(tokens_all),
                               "effective_rank": effective_rank(tokens_all.mean(1)), "probe_acc": None}
        if self.num_train:
            n = self.num_train
            row["probe_acc"] = attentive_probe(tokens_all[:n], self.labels[:n], tokens_all[n:], self.labels[n:])
        return row


# ---- output ------------------------------------------------------------------------------------------------

def _save_weights(folder: Path, model: VJEPA2Model, target: torch.nn.Module) -> None:
    """A `VJEPA2Model` save_pretrained folder: the target encoder + the online predictor, atomically."""
    export = VJEPA2Model(model.config)
    export.encoder.load_state_dict(target.state_dict())
    export.predictor.load_state_dict(model.predictor.state_dict())
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar every epoch says nothing
    try:
        with staged_dir(folder) as tmp:
            export.save_pretrained(tmp, safe_serialization=True)
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _complete_folder(out: Path, work: Path, record: PretrainRecord) -> None:
    """Copy the kept weights next to the manifest; the manifest goes last, as the mark of a complete folder."""
    for name in os.listdir(work / "best"):
        with staged_file(out / name) as tmp:
            shutil.copyfile(work / "best" / name, tmp)
    manifest = {"pretrain_id": record.run["pretrain_id"], "run": record.run, "epochs": record.epochs}
    write_text(out / MANIFEST, json.dumps(manifest, indent=1, default=str))
    shutil.rmtree(work)


def _record_from_manifest(out: Path) -> PretrainRecord:
    """The record of a run finished earlier, as its manifest keeps it."""
    manifest = json.loads((out / MANIFEST).read_text())
    return PretrainRecord(run=manifest["run"], epochs=manifest["epochs"], directory=out, resumed_from=-1)


def _success_record(prepared: Prepared, history: list[dict[str, Any]], best_epoch: int, *, started: datetime,
                    seconds: float, peak: int, device: torch.device, precision: str, directory: Path) -> PretrainRecord:
    kept = next(r for r in history if r["epoch"] == best_epoch) if best_epoch else history[-1]
    run = {
        **_pretrain_columns(prepared), "status": "success", "chosen_epoch": kept["epoch"],
        "chosen_by": "probe_acc" if kept.get("probe_acc") is not None else "last",
        "final_loss": history[-1]["loss"], "probe_acc": kept.get("probe_acc"),
        "effective_rank": kept["effective_rank"], "embedding_std": kept["embedding_std"],
        "initial_effective_rank": history[0]["effective_rank"], "initial_embedding_std": history[0]["embedding_std"],
        "initial_probe_acc": history[0].get("probe_acc"),
        "started_at": started, "finished_at": datetime.now(), "train_seconds": seconds,
        "peak_memory_bytes": peak, "device": str(device), "precision": precision, "output_path": str(directory),
    }
    return PretrainRecord(run=run, epochs=[{"pretrain_id": prepared.pretrain_id, **row} for row in history],
                          directory=directory)


def failed_pretrain_record(prepared: Prepared, started: datetime, error: BaseException) -> PretrainRecord:
    """The record of a pretraining run that raised after its input was checked: one row, no epochs."""
    return PretrainRecord(run={
        **_pretrain_columns(prepared), "status": "failed", "error": error_message(error), "started_at": started,
        "finished_at": datetime.now(), "train_seconds": (datetime.now() - started).total_seconds()})


def _pretrain_columns(prepared: Prepared) -> dict[str, Any]:
    """The columns every pretraining run has, failed ones too: what was asked for, on which videos, by which code."""
    spec = prepared.spec
    return {"pretrain_id": prepared.pretrain_id, "model": describe_model(spec.model), "dataset": spec.data,
            "data_fingerprint": prepared.data_fingerprint, "num_videos": len(prepared.videos),
            "videos_skipped": len(prepared.skipped), "probe_data": spec.probe_data or None, "epochs": spec.epochs,
            "batch_size": spec.batch_size, "lr": spec.lr, "masks": spec.masks,
            "masked_ratio": float(np.mean([expected_masked(m, prepared.grid) for m in prepared.masks])),
            "spec": spec.to_dict(), **provenance_columns(),
            "skipped_videos": [{"path": p, "reason": r} for p, r in prepared.skipped]}


def _print_epoch(row: dict[str, Any], epochs: int, progress: bool) -> None:
    probe = "" if row.get("probe_acc") is None else f"  probe {row['probe_acc']:.1%}"
    message = (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4f}  std {row['embedding_std']:.3f}  "
               f"rank {row['effective_rank']:.1f}{probe}  ({row['seconds']:.0f} s)")
    if progress:
        progress_write(message)
    else:
        log.info(message)
