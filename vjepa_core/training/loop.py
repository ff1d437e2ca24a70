"""The training loop: AdamW, warmup + cosine, accumulation, clipping, per-epoch validation.

`fit(model, feed, spec, ...)` trains the parameters with `requires_grad` (the strategy set them),
validates after every epoch, restores the best epoch's weights before returning, and gives one
row per epoch. `fit_together` does the same for several models over one pass of the feed (a sweep's
runs on shared cached tokens). The loop never asks which strategy it runs or whether inputs are
pixels or tokens.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vjepa_core.models.device import RandomStream, autocast
from vjepa_core.progress import progress_bar, progress_write
from vjepa_core.spec import RunSpec
from vjepa_core.strategies.base import in_module, is_lora
from vjepa_core.training.features import average_views


class Feed(Protocol):
    def train_batches(self, epoch: int) -> object: ...
    def eval_batches(self, split: str) -> object: ...
    def views_per_video(self, split: str) -> int: ...
    def forward(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor: ...


@dataclass
class SplitScores:
    """Per-video results of one split: probabilities [videos, classes] and true labels [videos]."""

    probs: np.ndarray
    labels: np.ndarray
    loss: float

    @property
    def accuracy(self) -> float:
        return float((self.probs.argmax(1) == self.labels).mean()) if len(self.labels) else 0.0


@dataclass
class FitResult:
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = -1.0
    best_val: SplitScores | None = None  # the restored weights' validation scores: no need to evaluate again
    train_acc: float = 0.0
    seconds: float = 0.0


Evaluator = Callable[[torch.nn.Module, str], SplitScores]
TRAIN_STREAM = 1_000_003  # offset of the training random stream's seed from the run's (init) seed


def lr_factor(step: int, total_steps: int, *, warmup_steps: int, schedule: str) -> float:
    """Linear warmup, then cosine decay to 0 (or constant)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, spec: RunSpec) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and 1-d parameters (the usual ViT recipe); the encoder's own
    weights step at `lr * encoder_lr_scale`. Each group keeps its peak rate as `base_lr`."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((is_encoder_weight(name), param.ndim >= 2), []).append(param)
    return torch.optim.AdamW([
        {"params": params, "weight_decay": spec.weight_decay if decay else 0.0,
         "base_lr": spec.lr * (spec.encoder_lr_scale if encoder else 1.0)}
        for (encoder, decay), params in sorted(groups.items())], lr=spec.lr)


def is_encoder_weight(name: str) -> bool:
    """The encoder's own weights; LoRA adapters inside it are new (B starts at 0) and take the full lr:
    `encoder_lr_scale` protects pretrained weights, and an adapter slowed with them barely leaves zero."""
    return in_module(name, "vjepa2") and not is_lora(name)


def fit(model: torch.nn.Module, feed: Feed, spec: RunSpec, *, device: torch.device, precision: str,
        steps_per_epoch: int, evaluate_split: Evaluator | None = None, progress: bool = True) -> FitResult:
    """Train one model; see `fit_together`."""
    return fit_together([model], [spec], feed, device=device, precision=precision, steps_per_epoch=steps_per_epoch,
                        evaluate_split=evaluate_split, progress=progress)[0]


def fit_together(models: list[torch.nn.Module], specs: list[RunSpec], feed: Feed, *, device: torch.device,
                 precision: str, steps_per_epoch: int, evaluate_split: Evaluator | None = None,
                 progress: bool = True) -> list[FitResult]:
    """Train several models on one pass of the feed: each batch goes to every model still training.

    Each model keeps its own optimizer, schedule, epochs, early stopping and random stream, so it ends
    exactly where it would have alone (the specs must share what makes the batches: seed, batch size).
    A run's epoch `seconds` are its own steps and validation plus an equal share of the batches' time.
    """
    evaluate_split = evaluate_split or (lambda m, split: evaluate(m, feed, split, device=device,
                                                                  precision=precision))
    runs = [_Run.start(model, spec, device, precision, steps_per_epoch)
            for model, spec in zip(models, specs, strict=True)]
    for epoch in range(1, max(spec.epochs for spec in specs) + 1):
        active = [run for run in runs if run.trains_in(epoch)]
        if not active:
            break
        epoch_start = time.perf_counter()
        for run in active:
            run.begin_epoch()
        last = max(run.spec.epochs for run in active)
        bar = progress_bar(feed.train_batches(epoch), total=steps_per_epoch, desc=f"epoch {epoch}/{last}",
                           unit="steps", enabled=progress)
        for step, (inputs, labels, _) in enumerate(bar):
            inputs = inputs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            last_in_epoch = step + 1 == steps_per_epoch
            for run in active:
                with run.own_time(), run.rng:
                    with autocast(device, precision):
                        logits = feed.forward(run.model, inputs)
                        loss = F.cross_entropy(logits.float(), labels, label_smoothing=run.spec.label_smoothing)
                    run.scaler.scale(loss / run.spec.accumulation_steps).backward()
                    if (step + 1) % run.spec.accumulation_steps == 0 or last_in_epoch:
                        run.update_weights()
                    run.count(loss, logits, labels)  # .item(): a device sync, cheap next to a forward/backward
            bar.set_postfix(**(active[0].postfix() if len(active) == 1 else {"runs": len(active)}))
        for run in active:
            with run.own_time():
                val = evaluate_split(run.model, "val")
            run.end_epoch(epoch, val)
        _share_time(active, time.perf_counter() - epoch_start)
        if progress:
            progress_write(_epoch_line(epoch, active))
    for run in runs:
        run.restore_best()
    return [run.result for run in runs]


@dataclass
class _Run:
    """One model's training inside `fit_together`: its optimizer, schedule, counters and best weights."""

    model: torch.nn.Module
    spec: RunSpec
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    total_updates: int
    warmup: int
    rng: RandomStream
    params: list[torch.nn.Parameter]
    result: FitResult = field(default_factory=FitResult)
    best_state: dict[str, torch.Tensor] | None = None
    update: int = 0
    stale: int = 0
    own_seconds: float = 0.0
    loss_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0

    @classmethod
    def start(cls, model: torch.nn.Module, spec: RunSpec, device: torch.device, precision: str,
              steps_per_epoch: int) -> _Run:
        updates_per_epoch = max(1, math.ceil(steps_per_epoch / spec.accumulation_steps))
        total = updates_per_epoch * spec.epochs
        # fp16 gradients underflow without loss scaling; bf16 and fp32 do not need it.
        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")
        # Dropout draws from a stream of the run's own, whatever ran before it (cache fill, other runs).
        rng = RandomStream(device, spec.seed + TRAIN_STREAM)
        return cls(model, spec, make_optimizer(model, spec), scaler, total, int(spec.warmup_ratio * total), rng,
                   [p for p in model.parameters() if p.requires_grad])

    def trains_in(self, epoch: int) -> bool:
        patience = self.spec.early_stopping_patience
        return epoch <= self.spec.epochs and not (patience and self.stale >= patience)

    def begin_epoch(self) -> None:
        self.model.train()
        self.loss_sum = self.correct = self.own_seconds = 0.0
        self.seen = 0

    @contextlib.contextmanager
    def own_time(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.own_seconds += time.perf_counter() - start

    def update_weights(self) -> None:
        factor = lr_factor(self.update, self.total_updates, warmup_steps=self.warmup, schedule=self.spec.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        if self.spec.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.spec.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.update += 1

    def count(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum += loss.item() * len(labels)
        self.correct += (logits.argmax(1) == labels).sum().item()
        self.seen += len(labels)

    def postfix(self) -> dict[str, str]:
        return {"loss": f"{self.loss_sum / max(self.seen, 1):.3f}", "acc": f"{self.correct / max(self.seen, 1):.2f}"}

    def end_epoch(self, epoch: int, val: SplitScores) -> None:
        row = {"epoch": epoch, "train_loss": self.loss_sum / max(self.seen, 1),
               "train_acc": self.correct / max(self.seen, 1), "val_loss": val.loss, "val_acc": val.accuracy,
               "seconds": self.own_seconds, "lr": max(group["lr"] for group in self.optimizer.param_groups)}
        result = self.result
        result.epochs.append(row)
        if val.accuracy > result.best_val_acc:
            result.best_epoch, result.best_val_acc, result.train_acc = epoch, val.accuracy, row["train_acc"]
            self.best_state, self.stale, result.best_val = trainable_state(self.model), 0, val
        else:
            self.stale += 1

    def restore_best(self) -> None:
        if self.best_state is not None:
            load_trainable_state(self.model, self.best_state)


def _share_time(runs: list[_Run], wall: float) -> None:
    """Each run's epoch seconds: its own work plus an equal share of what they shared (the batches)."""
    shared = max(0.0, wall - sum(run.own_seconds for run in runs)) / len(runs)
    for run in runs:
        run.result.epochs[-1]["seconds"] += shared
        run.result.seconds += run.result.epochs[-1]["seconds"]


def _epoch_line(epoch: int, runs: list[_Run]) -> str:
    if len(runs) == 1:
        row = runs[0].result.epochs[-1]
        return (f"epoch {epoch}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | "
                f"val loss {row['val_loss']:.3f} acc {row['val_acc']:.3f}")
    best = max(runs, key=lambda run: run.result.epochs[-1]["val_acc"])
    return (f"epoch {epoch}: {len(runs)} runs | best val acc {best.result.epochs[-1]['val_acc']:.3f} "
            f"(lr {best.spec.lr:g}, weight decay {best.spec.weight_decay:g})")


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: copy.deepcopy(p.detach()) for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


@torch.no_grad()
def evaluate(model: torch.nn.Module, feed: Feed, split: str, *, device: torch.device,
             precision: str) -> SplitScores:
    """Softmax averaged over each video's views; loss is the mean per-video cross-entropy."""
    model.eval()
    probs, labels, videos = [], [], []
    for inputs, label, video in feed.eval_batches(split):
        with autocast(device, precision):
            logits = feed.forward(model, inputs.to(device, non_blocking=True))
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        labels.append(label)
        videos.append(video)
    return scores_from_views(torch.cat(probs).numpy(), torch.cat(labels).numpy(), torch.cat(videos).numpy())


def scores_from_views(probs: np.ndarray, labels: np.ndarray, videos: np.ndarray) -> SplitScores:
    num_videos = int(videos.max()) + 1 if len(videos) else 0
    per_video = average_views(probs, videos, num_videos)
    video_labels = np.zeros(num_videos, dtype=np.int64)
    video_labels[videos] = labels
    loss = float(-np.log(np.clip(per_video[np.arange(num_videos), video_labels], 1e-12, None)).mean())
    return SplitScores(per_video, video_labels, loss)

