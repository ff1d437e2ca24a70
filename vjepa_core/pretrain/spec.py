"""The frozen pretraining spec: everything that decides a pretraining run's weights, and nothing else.

Each option is declared once, as a field with its type, default and `Option` (help, bounds); the CLI
flags (`runner pretrain`), validation and hashing are derived from it as for the run spec
(`vjepa_core.fields`). Built as defaults <- CLI flags (`from_dict`); `__post_init__` coerces and checks
every value and the masks, a `UserError` naming the field. `pretrain_id(data_fingerprint)` hashes the
canonical JSON together with the fingerprint of the videos it reads, so the same run on the same videos
always lands in the same `results/pretrained/<id>/` folder, which is what lets a killed run resume.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vjepa_core.errors import UserError
from vjepa_core.fields import Option, Precision, canonical, check_known, digest_text, identity, option, settle
from vjepa_core.pretrain.masks import parse_masks

# V-JEPA 2's recipe scaled to a CPU: its masks, AdamW with warmup + cosine, L1 loss, an EMA target whose
# momentum rises linearly (V-JEPA 1's 0.998 -> 1.0 schedule, shortened for a few thousand steps).
MASKS = "8x0.15,2x0.7"


def _option(default: Any, help: str, **bounds: Any) -> Any:
    return option(default, Option(help, **bounds))


@dataclass(frozen=True)
class PretrainSpec:
    model: str = _option(
        "tiny", "Where pretraining starts: a preset (tiny, small: random init; tiny-jepa), a local save_pretrained "
        "folder, a hub id (facebook/vjepa2-vitl-fpc16-256-ssv2) or a .pt checkpoint of Meta's V-JEPA 2 code (a "
        "fresh predictor); V-JEPA 2.1 is refused (another objective).")
    data: str = _option(
        "synthetic", "Unlabelled videos: 'synthetic', a folder (every video under it, recursively), a glob "
        "('clips/**/*.mp4', quoted), a list file (.txt: one path per line), a CSV manifest with a path column, or a "
        "labelled layout (class folders, train/val/test/<class>); labels and splits are ignored, every video is used.")
    probe_data: str = _option(
        "", "A labelled set for a frozen attentive probe after every epoch (one learned query over the tokens + a "
        "linear layer, its train split -> its val split); the epoch with the best probe accuracy is kept, else "
        "the last.")
    epochs: int = _option(10, "Passes over the videos.", at_least=1)
    batch_size: int = _option(16, "Clips per step.", at_least=1)
    clips_per_video: int = _option(1, "Random clips drawn from each video per epoch.", at_least=1)
    lr: float = _option(5e-4, "Peak AdamW learning rate (linear warmup, then cosine to 0).", above=0)
    weight_decay: float = _option(
        0.04, "AdamW weight decay on matrices (not on biases, norms and mask tokens).", at_least=0)
    warmup_ratio: float = _option(0.1, "Fraction of steps spent warming the learning rate up.", at_least=0, below=1)
    grad_clip: float = _option(1.0, "Clip the gradient norm to this (0 = off).", at_least=0)
    ema_start: float = _option(0.996, "EMA momentum of the target encoder at the first step ...", at_least=0,
                               at_most=1)
    ema_end: float = _option(
        1.0, "... rising linearly to this at the last step (equal values: a constant).", at_least=0, at_most=1)
    masks: str = _option(
        MASKS, "Multi-block masks, one per comma: blocks x spatial scale, optionally /share of time the context "
        "may come from; e.g. 8x0.15,2x0.7 (V-JEPA 2's), or 4x0.15/0.5 to predict the second half too.")
    frames_per_clip: int = _option(16, "Frames per clip.", at_least=1)
    frame_stride: int = _option(2, "Take every Nth frame.", at_least=1)
    crop_scale: float = _option(0.3, "Smallest area share of the random resized crop (V-JEPA 2: 0.3).", above=0,
                                at_most=1)
    seed: int = _option(0, "Seed of initialisation, clip order, augmentation and masks.")
    precision: Precision = _option("auto", "auto, fp32, bf16 or fp16 autocast (auto: bf16/fp16 on GPU, fp32 on CPU).")

    def __post_init__(self) -> None:
        settle(self)
        if self.ema_end < self.ema_start:
            raise UserError(f"ema_end is out of range: {self.ema_end} (need ema_start <= ema_end <= 1)")
        parse_masks(self.masks)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainSpec:
        """Build from a plain dict (the CLI's flags); unknown keys are an error naming them."""
        check_known(cls, values, "pretraining option")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return canonical(identity(PretrainSpec, self.to_dict()))

    def pretrain_id(self, data_fingerprint: str) -> str:
        return digest_text(f"{self.canonical_json()}|{data_fingerprint}")
