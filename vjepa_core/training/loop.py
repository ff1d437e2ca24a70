"""The training loop: AdamW, warmup + cosine, accumulation, clipping, per-epoch validation.

`fit(model, feed, spec, ...)` trains the parameters with `requires_grad` (the strategy set them),
validates after every epoch, restores the best epoch's weights before returning, and gives one
row per epoch. The loop never asks which strategy it runs or whether inputs are pixels or tokens.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vjepa_core.models.device import autocast
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
    evaluate_split = evaluate_split or (lambda m, split: evaluate(m, feed, split, device=device,
                                                                  precision=precision))
    optimizer = make_optimizer(model, spec)
    updates_per_epoch = max(1, math.ceil(steps_per_epoch / spec.accumulation_steps))
    total_updates = updates_per_epoch * spec.epochs
    warmup = int(spec.warmup_ratio * total_updates)
    # fp16 gradients underflow without loss scaling; bf16 and fp32 do not need it.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    result, best_state, update, stale = FitResult(), None, 0, 0
    start = time.perf_counter()
    for epoch in range(1, spec.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = correct = seen = 0.0
        bar = progress_bar(feed.train_batches(epoch), total=steps_per_epoch, desc=f"epoch {epoch}/{spec.epochs}",
                           unit="steps", enabled=progress)
        for step, (inputs, labels, _) in enumerate(bar):
            inputs = inputs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with autocast(device, precision):
                logits = feed.forward(model, inputs)
                loss = F.cross_entropy(logits.float(), labels, label_smoothing=spec.label_smoothing)
            scaler.scale(loss / spec.accumulation_steps).backward()
            last_in_epoch = step + 1 == steps_per_epoch
            if (step + 1) % spec.accumulation_steps == 0 or last_in_epoch:
                factor = lr_factor(update, total_updates, warmup_steps=warmup, schedule=spec.schedule)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                if spec.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                update += 1
            # .item() is a device sync; once per step is cheap next to a forward/backward.
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.2f}")
        val = evaluate_split(model, "val")
        row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
               "val_loss": val.loss, "val_acc": val.accuracy, "seconds": time.perf_counter() - epoch_start,
               "lr": max(group["lr"] for group in optimizer.param_groups)}
        result.epochs.append(row)
        if val.accuracy > result.best_val_acc:
            result.best_epoch, result.best_val_acc, result.train_acc = epoch, val.accuracy, row["train_acc"]
            best_state, stale, result.best_val = trainable_state(model), 0, val
        else:
            stale += 1
        if progress:
            progress_write(f"epoch {epoch}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | "
                       f"val loss {val.loss:.3f} acc {val.accuracy:.3f}")
        if spec.early_stopping_patience and stale >= spec.early_stopping_patience:
            break
    if best_state is not None:
        load_trainable_state(model, best_state)
    result.seconds = time.perf_counter() - start
    return result


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

