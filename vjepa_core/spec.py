"""The frozen run spec: everything that decides a run's result, and nothing else.

Built as defaults <- YAML <- CLI flags. `__post_init__` rejects unknown keys, wrong types and
impossible values with a `UserError` naming the field, then resets the options its strategy never
reads to their defaults (`Strategy.unused_options`). `run_id` is a hash of the canonical JSON, so
the same experiment always gets the same id and a finished one can be skipped. Fields added after
ids were first handed out (`ADDED_FIELDS`) count only when they differ from their default, so the
runs of an older spec keep their ids.
Execution details (device, decoder, workers, cache) live in `ExecOptions`: they change how fast a
run goes, not what it computes, so they are not part of the id.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from vjepa_core.errors import UserError
from vjepa_core.strategies import STRATEGIES, get_strategy

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Schedule = Literal["cosine", "constant"]


@dataclass(frozen=True)
class RunSpec:
    strategy: str = "pooler_head"
    model: str = "tiny"
    data: str = "synthetic"
    videos_per_class: int | None = None
    frames_per_clip: int = 16
    frame_stride: int = 2
    epochs: int = 20
    batch_size: int = 8
    accumulation_steps: int = 1
    lr: float = 1e-3
    encoder_lr_scale: float = 1.0
    weight_decay: float = 0.01
    schedule: Schedule = "cosine"
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    early_stopping_patience: int = 0
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_mlp: bool = False
    augment: bool = True
    hflip: bool = True
    train_views: int = 4
    eval_clips: int = 1
    eval_crops: int = 1
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    seed: int = 0
    precision: Precision = "auto"
    feature_layers: tuple[int, ...] = ()
    pooler_layers: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_layers", _int_tuple(self.feature_layers))
        _check_types(self)
        _check_values(self)
        # The pooler reads its tokens as a set: the order layers are named in changes nothing.
        object.__setattr__(self, "feature_layers", tuple(sorted(self.feature_layers)))
        _reset_unused(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunSpec:
        """Build from a plain dict (YAML, JSON, CLI); unknown keys are an error naming them."""
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise UserError(f"unknown run option(s): {', '.join(unknown)} (known: {', '.join(field_names())})")
        return cls(**{key: _coerce(key, value) for key, value in values.items()})

    def replace(self, **changes: Any) -> RunSpec:
        return RunSpec.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        return _digest(_identity(self.to_dict()))

    @property
    def config_id(self) -> str:
        return config_id(self.to_dict())


def config_id(spec: dict[str, Any]) -> str:
    """A configuration is a run spec without its seed: its seeds are repeats of one configuration.

    Takes the spec as a dict (a warehouse row's `spec` JSON), so that readers need not rebuild a RunSpec."""
    return _digest({key: value for key, value in _identity(spec).items() if key != "seed"})


# Run options added after run ids were in use: at their default they are left out of the id.
ADDED_FIELDS = ("feature_layers", "pooler_layers")


def _identity(values: dict[str, Any]) -> dict[str, Any]:
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec)}
    return {key: value for key, value in values.items()
            if key not in ADDED_FIELDS or _canonical({"v": value}) != _canonical({"v": defaults[key]})}


def _canonical(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def _digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(values).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExecOptions:
    """How a run executes; none of it is part of `run_id`."""

    device: str = "auto"
    decoder: str = "auto"
    num_workers: int = 0
    cache: bool = True
    cache_on_disk: bool = True
    progress: bool = True
    matrix_id: str | None = None
    checkpoint_dtype: str = "auto"  # fp32, fp16, bf16, or auto (vjepa_core.store.checkpoint.checkpoint_dtype)
    joint: int = 20  # runs trained side by side on one pass of cached tokens (vjepa_core.training.joint)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunSpec)]


def field_type(name: str) -> Any:
    return _type_hints()[name]


@functools.cache
def _type_hints() -> dict[str, Any]:
    # Resolving the string annotations is slow (~ms per field); a matrix builds hundreds of specs.
    return typing.get_type_hints(RunSpec)


def _allowed(hint: Any) -> tuple[type, ...] | tuple[Any, ...]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(hint) for t in _allowed(arg))
    if origin is Literal:
        return typing.get_args(hint)
    return (hint,)


def _coerce(name: str, value: Any) -> Any:
    """YAML and the CLI give ints for floats and strings for everything; accept the harmless cases."""
    if name not in field_names():
        return value
    if typing.get_origin(field_type(name)) is tuple:
        return _int_tuple(value)
    allowed = _allowed(field_type(name))
    if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
        return float(value)
    if isinstance(value, str) and str not in allowed and not any(isinstance(a, str) for a in allowed):
        for kind in (int, float):
            if kind in allowed:
                try:
                    return kind(value)
                except ValueError:
                    pass
        if value.lower() in ("none", "null") and type(None) in allowed:
            return None
        if bool in allowed and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def _int_tuple(value: Any) -> Any:
    """A list of layers from YAML or JSON, '17,19,21,23' or '[17, 19]' from the CLI, or one int -> a tuple.

    Anything else is returned as it is, for `_check_types` to name."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.strip().strip("[]()").split(",") if part.strip()]
        try:
            return tuple(int(part) for part in parts)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _check_types(spec: RunSpec) -> None:
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if typing.get_origin(field_type(f.name)) is tuple:
            if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise UserError(f"{f.name}: expected a list of integers (e.g. 17,19,21,23), got {value!r}")
            continue
        allowed = _allowed(field_type(f.name))
        literals = [a for a in allowed if not isinstance(a, type)]
        kinds = tuple(a for a in allowed if isinstance(a, type))
        if literals and value in literals:
            continue
        bool_for_number = isinstance(value, bool) and bool not in kinds  # True is an int to Python
        if bool_for_number or not (kinds and isinstance(value, kinds)):
            expected = " | ".join(repr(a) if not isinstance(a, type) else a.__name__ for a in allowed)
            raise UserError(f"{f.name}: expected {expected}, got {value!r}")


_POSITIVE = ("frames_per_clip", "frame_stride", "epochs", "batch_size", "accumulation_steps", "lora_rank",
             "train_views", "eval_clips", "eval_crops")


def _reset_unused(spec: RunSpec) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec)}
    for name in STRATEGIES[spec.strategy].unused_options():
        object.__setattr__(spec, name, defaults[name])  # frozen: only __post_init__ may do this


def _check_values(spec: RunSpec) -> None:
    for name in _POSITIVE:
        if getattr(spec, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(spec, name)}")
    if spec.videos_per_class is not None and spec.videos_per_class < 1:
        raise UserError(f"videos_per_class must be at least 1, got {spec.videos_per_class}")
    if not spec.lr > 0:
        raise UserError(f"lr must be > 0, got {spec.lr}")
    checks = {
        "weight_decay": spec.weight_decay >= 0,
        "encoder_lr_scale": 0 < spec.encoder_lr_scale <= 1,
        "lora_alpha": spec.lora_alpha > 0,
        "lora_dropout": 0 <= spec.lora_dropout < 1,
        "warmup_ratio": 0 <= spec.warmup_ratio < 1,
        "grad_clip": spec.grad_clip >= 0,
        "label_smoothing": 0 <= spec.label_smoothing < 1,
        "early_stopping_patience": spec.early_stopping_patience >= 0,
        "val_fraction": 0 < spec.val_fraction < 1,
        "test_fraction": 0 < spec.test_fraction < 1,
    }
    for name, ok in checks.items():
        if not ok:
            raise UserError(f"{name} is out of range: {getattr(spec, name)}")
    if len(set(spec.feature_layers)) != len(spec.feature_layers):
        raise UserError(f"feature_layers: each layer once, got {list(spec.feature_layers)}")
    if spec.pooler_layers is not None and spec.pooler_layers < 0:
        raise UserError(f"pooler_layers must be at least 0, got {spec.pooler_layers}")
    if spec.val_fraction + spec.test_fraction >= 1:
        raise UserError("val_fraction + test_fraction must leave videos for training (sum < 1)")
    get_strategy(spec.strategy)  # a UserError naming the choices


FIELD_HELP: dict[str, str] = {
    "strategy": "What trains: head, pooler_head, lora, pooler_head_lora, lora_backbone, full, scratch.",
    "model": "Hub id (facebook/vjepa2-vitl-fpc16-256-ssv2), a local save_pretrained folder, or a preset "
             "(tiny, small: random init; tiny-jepa: tiny pretrained offline, with a source-task pooler).",
    "data": "'synthetic', a folder (per class, or train/val/test/<class>), or a CSV manifest "
            "path,label[,split][,group].",
    "videos_per_class": "Training videos per class (a balanced, nested subset); val/test stay whole.",
    "frames_per_clip": "Frames the model sees per clip.",
    "frame_stride": "Take every Nth frame when sampling a clip.",
    "epochs": "Training epochs.",
    "batch_size": "Clips per step.",
    "accumulation_steps": "Steps whose gradients add up before one optimizer update.",
    "lr": "Peak learning rate (AdamW).",
    "encoder_lr_scale": "The encoder weights' learning rate as a fraction of lr (full, scratch): a gentler "
                        "step for pretrained weights than for the new pooler and head. LoRA adapters take lr.",
    "weight_decay": "AdamW weight decay on matrices (not on biases and norms).",
    "schedule": "cosine (after warmup) or constant.",
    "warmup_ratio": "Fraction of updates spent warming the learning rate up linearly.",
    "grad_clip": "Clip the gradient norm to this (0 = off).",
    "label_smoothing": "Cross-entropy label smoothing.",
    "early_stopping_patience": "Stop after this many epochs without a better val accuracy (0 = off).",
    "lora_rank": "LoRA rank r.",
    "lora_alpha": "LoRA alpha (scale = alpha / r).",
    "lora_dropout": "Dropout on the LoRA input.",
    "lora_mlp": "lora_backbone: also adapt the encoder MLPs.",
    "augment": "Random temporal offset, resized crop and flip in training.",
    "hflip": "Mirror training clips (labels swap per the dataset's flip_pairs.json).",
    "train_views": "Augmented views cached per training video for frozen-encoder strategies.",
    "eval_clips": "Clips per video at evaluation (softmax averaged).",
    "eval_crops": "Spatial crops per clip at evaluation (1 = centre, 3 = along the long side).",
    "val_fraction": "Share of each class held out for validation (auto-split data).",
    "test_fraction": "Share of each class held out for test (auto-split data).",
    "split_seed": "Seed of the train/val/test split and the data-size subsets.",
    "seed": "Seed of initialisation, shuffling and augmentation choice.",
    "precision": "auto, fp32, bf16 or fp16 autocast (auto: bf16/fp16 on GPU, fp32 on CPU).",
    "feature_layers": "Encoder blocks whose tokens feed the pooler, e.g. 17,19,21,23 (ViT-L's last four even "
                      "blocks, the official Diving-48/Jester probe); negative counts from the end; empty: the last.",
    "pooler_layers": "Self-attention layers of the pooler before its cross-attention (the official num_probe_blocks "
                     "minus 1); another depth than the model's starts a fresh pooler. Read only by strategies that "
                     "train the pooler's own weights (pooler_head, pooler_head_lora, full, scratch). Default: the "
                     "model's.",
}
