"""The frozen pretraining spec: everything that decides a pretraining run's weights, and nothing else.

Built as defaults <- CLI flags; `__post_init__` rejects wrong types and impossible values with a
`UserError` naming the field. `pretrain_id(data_fingerprint)` hashes the canonical JSON together with
the fingerprint of the videos it reads, so the same run on the same videos always lands in the same
`results/pretrained/<id>/` folder, which is what lets a killed run resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from vjepa_core.errors import UserError
from vjepa_core.pretrain.masks import parse_masks

# V-JEPA 2's recipe scaled to a CPU: its masks, AdamW with warmup + cosine, L1 loss, an EMA target whose
# momentum rises linearly (V-JEPA 1's 0.998 -> 1.0 schedule, shortened for a few thousand steps).
MASKS = "8x0.15,2x0.7"


@dataclass(frozen=True)
class PretrainSpec:
    model: str = "tiny"
    data: str = "synthetic"
    probe_data: str = ""
    epochs: int = 10
    batch_size: int = 16
    clips_per_video: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.04
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_start: float = 0.996
    ema_end: float = 1.0
    masks: str = MASKS
    frames_per_clip: int = 16
    frame_stride: int = 2
    crop_scale: float = 0.3
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = type(f.default)
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
                ok = True
            if not ok:
                raise UserError(f"{f.name}: expected {kind.__name__}, got {value!r}")
        _check_values(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def pretrain_id(self, data_fingerprint: str) -> str:
        return hashlib.sha256(f"{self.canonical_json()}|{data_fingerprint}".encode()).hexdigest()[:16]


HELP: dict[str, str] = {
    "model": "Where pretraining starts: a preset (tiny, small: random init; tiny-jepa), a local save_pretrained "
             "folder, or a hub id (facebook/vjepa2-vitl-fpc16-256-ssv2).",
    "data": "Unlabelled videos: 'synthetic', a folder (of class folders, or train/val/test/<class>), or a CSV "
            "manifest; labels and splits are ignored, every video is used.",
    "probe_data": "A labelled set for a frozen attentive probe after every epoch (one learned query over the "
                  "tokens + a linear layer, its train split -> its val split); the epoch with the best probe "
                  "accuracy is kept, else the last.",
    "epochs": "Passes over the videos.",
    "batch_size": "Clips per step.",
    "clips_per_video": "Random clips drawn from each video per epoch.",
    "lr": "Peak AdamW learning rate (linear warmup, then cosine to 0).",
    "weight_decay": "AdamW weight decay on matrices (not on biases, norms and mask tokens).",
    "warmup_ratio": "Fraction of steps spent warming the learning rate up.",
    "grad_clip": "Clip the gradient norm to this (0 = off).",
    "ema_start": "EMA momentum of the target encoder at the first step ...",
    "ema_end": "... rising linearly to this at the last step (equal values: a constant).",
    "masks": "Multi-block masks, one per comma: blocks x spatial scale, optionally /share of time the context "
             "may come from; e.g. 8x0.15,2x0.7 (V-JEPA 2's), or 4x0.15/0.5 to predict the second half too.",
    "frames_per_clip": "Frames per clip.",
    "frame_stride": "Take every Nth frame.",
    "crop_scale": "Smallest area share of the random resized crop (V-JEPA 2: 0.3).",
    "seed": "Seed of initialisation, clip order, augmentation and masks.",
    "precision": "auto, fp32, bf16 or fp16 autocast (auto: bf16/fp16 on GPU, fp32 on CPU).",
}


def _check_values(spec: PretrainSpec) -> None:
    for name in ("epochs", "batch_size", "clips_per_video", "frames_per_clip", "frame_stride"):
        if getattr(spec, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(spec, name)}")
    checks = {
        "lr": spec.lr > 0,
        "weight_decay": spec.weight_decay >= 0,
        "warmup_ratio": 0 <= spec.warmup_ratio < 1,
        "grad_clip": spec.grad_clip >= 0,
        "ema_start": 0 <= spec.ema_start <= 1,
        "ema_end": spec.ema_start <= spec.ema_end <= 1,
        "crop_scale": 0 < spec.crop_scale <= 1,
    }
    for name, ok in checks.items():
        if not ok:
            raise UserError(f"{name} is out of range: {getattr(spec, name)}"
                            + (" (need ema_start <= ema_end <= 1)" if name == "ema_end" else ""))
    if spec.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"precision: expected auto, fp32, bf16 or fp16, got {spec.precision!r}")
    parse_masks(spec.masks)
