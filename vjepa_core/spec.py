"""The frozen run spec: everything that decides a run's result, and nothing else; and how a run executes.

A run option is one `RunSpec` field (type, default, a `RunOption` with its help, bounds and who reads it); its
flag, its check, the run id (a hash of the canonical JSON), the warehouse column, joint grouping and the
reproduce command are derived from the field. A `column=True` option also needs its column in
`store/schema.sql` and a migration (a test holds that). `ExecOptions` (device, decoder, workers, ...) change how
fast a run goes, not what it computes, so they stay out of the id; they are declared the same way.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from vjepa_core.errors import UserError
from vjepa_core.fields import (
    Option,
    Precision,
    check_known,
    declared,
    defaults,
    digest,
    identity,
    option,
    settle,
)
from vjepa_core.strategies import STRATEGIES, Strategy, get_strategy

Schedule = Literal["cosine", "constant"]


@dataclass(frozen=True)
class RunOption(Option):
    """A run option's declaration (see `Option` for help, added and bounds).

    `per_run`: runs trained side by side on one pass of cached tokens may differ in it (how each optimises,
    what trains); the others make the shared batches. `swept`: a sweep may vary it (not the seeds or the
    data). `column`: the warehouse's `runs` table holds it in a column of its name. `repeat`: runs that
    differ only in it repeat one configuration (the seed). `read_by`: the `Strategy` method that says a
    strategy reads it (None: every strategy does).
    """

    per_run: bool = False
    swept: bool = True
    column: bool = False
    repeat: bool = False
    read_by: Callable[[Strategy], bool] | None = None


def run_option(default: Any, help: str, **details: Any) -> Any:
    """A `RunSpec` field: its default, its help, and the other `RunOption` details. An option only some strategies
    read names them at the end of its help, from the registry."""
    read_by = details.get("read_by")
    if read_by is not None:
        help = f"{help} Read by {', '.join(name for name, strategy in STRATEGIES.items() if read_by(strategy))}."
    return option(default, RunOption(help, **details))


@dataclass(frozen=True)
class RunSpec:
    strategy: str = run_option(
        "pooler_head", f"What trains: {', '.join(STRATEGIES)}.", per_run=True, column=True)
    model: str = run_option(
        "tiny", "Hub id (facebook/vjepa2-vitl-fpc16-256-ssv2), a local save_pretrained folder, a preset "
        "(tiny, small, tiny-2.1: random init; tiny-jepa: tiny pretrained offline, with a source-task pooler), one of "
        "Meta's V-JEPA 2.1 files by name (vjepa2_1_vit_base_384, vjepa2_1_vit_large_384, vjepa2_1_vit_giant_384, "
        "vjepa2_1_vit_gigantic_384) or a .pt checkpoint of Meta's V-JEPA 2 / 2.1 code (docs: guides/models).",
        column=True)  # the column holds it resolved (training.experiment)
    data: str = run_option(
        "synthetic", "'synthetic', a folder (per class, or train/val/test/<class>), or a CSV manifest "
        "path,label[,split][,group].", swept=False)
    videos_per_class: int | None = run_option(
        None, "Training videos per class (a balanced, nested subset); val/test stay whole.", at_least=1,
        column=True)
    frames_per_clip: int = run_option(16, "Frames the model sees per clip.", at_least=1, column=True)
    frame_stride: int = run_option(2, "Take every Nth frame when sampling a clip.", at_least=1, column=True)
    epochs: int = run_option(20, "Training epochs.", at_least=1, per_run=True, column=True)
    batch_size: int = run_option(8, "Clips per step.", at_least=1, column=True)
    accumulation_steps: int = run_option(
        1, "Steps whose gradients add up before one optimizer update.", at_least=1, per_run=True, column=True)
    lr: float = run_option(1e-3, "Peak learning rate (AdamW).", above=0, per_run=True, column=True)
    encoder_lr_scale: float = run_option(
        1.0, "The encoder weights' learning rate as a fraction of lr: a gentler step for pretrained weights than "
        "for the new pooler and classifier. LoRA adapters take lr.", above=0, at_most=1,
        per_run=True, read_by=Strategy.trains_encoder_weights)
    weight_decay: float = run_option(
        0.01, "AdamW weight decay on matrices (not on biases and norms).", at_least=0, per_run=True, column=True)
    schedule: Schedule = run_option("cosine", "cosine (after warmup) or constant.", per_run=True)
    warmup_ratio: float = run_option(
        0.1, "Fraction of updates spent warming the learning rate up linearly.", at_least=0, below=1,
        per_run=True)
    grad_clip: float = run_option(1.0, "Clip the gradient norm to this (0 = off).", at_least=0, per_run=True)
    label_smoothing: float = run_option(
        0.0, "Cross-entropy label smoothing.", at_least=0, below=1, per_run=True)
    early_stopping_patience: int = run_option(
        0, "Stop after this many epochs without a better val accuracy (0 = off).", at_least=0, per_run=True)
    lora_rank: int = run_option(
        16, "LoRA rank r.", at_least=1, per_run=True, column=True, read_by=Strategy.uses_lora)
    lora_alpha: float = run_option(
        32.0, "LoRA alpha (scale = alpha / r).", above=0, per_run=True, column=True, read_by=Strategy.uses_lora)
    lora_dropout: float = run_option(
        0.05, "Dropout on the LoRA input.", at_least=0, below=1, per_run=True, column=True,
        read_by=Strategy.uses_lora)
    lora_mlp: bool = run_option(
        False, "Also adapt the encoder MLPs.", per_run=True,
        read_by=Strategy.adapts_encoder_with_lora)
    augment: bool = run_option(True, "Random temporal offset, resized crop and flip in training.")
    hflip: bool = run_option(True, "Mirror training clips (labels swap per the dataset's flip_pairs.json).")
    train_views: int = run_option(
        4, "Augmented views cached per training video for frozen-encoder strategies.", at_least=1)
    eval_clips: int = run_option(1, "Clips per video at evaluation (softmax averaged).", at_least=1)
    eval_crops: int = run_option(
        1, "Spatial crops per clip at evaluation (1 = centre, 3 = along the long side).", at_least=1)
    val_fraction: float = run_option(
        0.15, "Share of each class held out for validation (auto-split data).", above=0, below=1)
    test_fraction: float = run_option(
        0.15, "Share of each class held out for test (auto-split data).", above=0, below=1)
    split_seed: int = run_option(0, "Seed of the train/val/test split and the data-size subsets.", swept=False)
    seed: int = run_option(
        0, "Seed of initialisation, shuffling and augmentation choice.", swept=False, column=True, repeat=True)
    precision: Precision = run_option(
        "auto", "auto, fp32, bf16 or fp16 autocast (auto: bf16/fp16 on GPU, fp32 on CPU).",
        column=True)  # a trained run's column holds the precision used (training.experiment)
    feature_layers: tuple[int, ...] = run_option(
        (), "Encoder blocks whose tokens feed the pooler, e.g. 17,19,21,23 (ViT-L's last four even blocks, the "
        "official Diving-48/Jester probe); negative counts from the end; empty: the last.", added="2026-11-25")
    pooler_layers: int | None = run_option(
        None, "Self-attention layers of the pooler before its cross-attention (the official num_probe_blocks "
        "minus 1); another depth than the model's starts a fresh pooler, so only strategies that train the "
        "pooler's own weights read it. Default: the model's.", at_least=0,
        added="2026-11-25", read_by=Strategy.trains_pooler_weights)

    def __post_init__(self) -> None:
        settle(self)
        _check_together(self)
        # The pooler reads its tokens as a set: the order layers are named in changes nothing.
        object.__setattr__(self, "feature_layers", tuple(sorted(self.feature_layers)))
        for name in unused_options(get_strategy(self.strategy)):
            object.__setattr__(self, name, RUN_DEFAULTS[name])  # frozen: only __post_init__ may do this

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunSpec:
        """Build from a plain dict (YAML, JSON, CLI); unknown keys are an error naming them."""
        check_known(cls, values, "run option")
        return cls(**values)

    def replace(self, **changes: Any) -> RunSpec:
        return RunSpec.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        return digest(identity(RunSpec, self.to_dict()))

    @property
    def config_id(self) -> str:
        return config_id(self.to_dict())


def _check_together(spec: RunSpec) -> None:
    """What no single field's bounds can say."""
    if len(set(spec.feature_layers)) != len(spec.feature_layers):
        raise UserError(f"feature_layers: each layer once, got {list(spec.feature_layers)}")
    if spec.val_fraction + spec.test_fraction >= 1:
        raise UserError("val_fraction + test_fraction must leave videos for training (sum < 1)")
    get_strategy(spec.strategy)  # a UserError naming the choices


RUN_OPTIONS: dict[str, RunOption] = declared(RunSpec)  # type: ignore[assignment]
RUN_DEFAULTS: dict[str, Any] = defaults(RunSpec)
PER_RUN_FIELDS = tuple(name for name, o in RUN_OPTIONS.items() if o.per_run)
SWEPT_FIELDS = tuple(name for name, o in RUN_OPTIONS.items() if o.swept)
COLUMN_FIELDS = tuple(name for name, o in RUN_OPTIONS.items() if o.column)
REPEAT_FIELDS = tuple(name for name, o in RUN_OPTIONS.items() if o.repeat)


def field_names() -> list[str]:
    return list(RUN_OPTIONS)


def config_id(spec: dict[str, Any]) -> str:
    """A configuration is a run spec without its seed: its seeds are repeats of one configuration.

    Takes the spec as a dict (a warehouse row's `spec` JSON), so that readers need not rebuild a RunSpec."""
    return digest({key: value for key, value in identity(RunSpec, spec).items() if key not in REPEAT_FIELDS})


def spec_columns(spec: RunSpec) -> dict[str, Any]:
    """The spec's values that the warehouse's `runs` table holds in columns of their names."""
    return {name: getattr(spec, name) for name in COLUMN_FIELDS}


def unused_options(strategy: Strategy) -> tuple[str, ...]:
    """Run options `strategy` never reads, in field order: a spec resets them to their defaults, so that they
    neither change its run_id nor split one configuration in two (`head` at lora_rank 8 and 64)."""
    return tuple(name for name, o in RUN_OPTIONS.items() if o.read_by is not None and not o.read_by(strategy))


def reads_option(strategy: str, option: str) -> bool:
    """Whether runs of the strategy named `strategy` use the run option `option` (unknown strategies: assume so)."""
    return strategy not in STRATEGIES or option not in unused_options(STRATEGIES[strategy])


CheckpointDtype = Literal["auto", "fp32", "fp16", "bf16"]


@dataclass(frozen=True)
class ExecOption(Option):
    """An execution option's declaration (see `Option` for help, bounds and flags). `shared`: every command that
    trains takes its flag (`runner.app.with_exec_options`); the others' flags belong to the commands that need
    them (`--no-cache` to run, `--joint` to run-matrix and sweep)."""

    shared: bool = False


def exec_option(default: Any, help: str, **details: Any) -> Any:
    """An `ExecOptions` field: its default, its help, and the other `ExecOption` details."""
    return option(default, ExecOption(help, **details))


@dataclass(frozen=True)
class ExecOptions:
    """How a run executes: it changes how fast a run goes, not what it computes, so none of it is in `run_id`."""

    device: str = exec_option("auto", "auto (CUDA > MPS > CPU), cpu, cuda, cuda:N or mps.", shared=True)
    decoder: str = exec_option("auto", "Video decoder: auto (decord, else PyAV), decord or pyav.", shared=True)
    num_workers: int = exec_option(
        0, "DataLoader worker processes for decoding (0 = decode in the main process).", at_least=0,
        flag="--workers", picked="half the CPUs, 1-4", shared=True)
    checkpoint_dtype: CheckpointDtype = exec_option(
        "auto", f"Weights in checkpoints: {', '.join(typing.get_args(CheckpointDtype))} (auto: half precision for "
        "bf16/fp16 runs and for pooler-sized checkpoints, fp32 for encoder weights trained in fp32).", shared=True)
    progress: bool = exec_option(
        True, "No progress (bars on a terminal, plain lines every 10% or 30 s in a log file).", flag="--quiet",
        short="-q", negated=True, shared=True)
    cache: bool = exec_option(
        True, "Run the frozen encoder every step (slow; for checking the cache).", flag="--no-cache", negated=True)
    cache_on_disk: bool = exec_option(
        True, "Keep the frozen encoder's tokens on disk under <results>/cache, for later runs to reuse.",
        on_cli=False)
    matrix_id: str | None = exec_option(None, "The matrix a run belongs to (set by run-matrix and sweep).",
                                        on_cli=False)
    joint: int = exec_option(
        20, "Train up to this many runs side by side on one pass of the cached encoder tokens when they differ "
        "only in how they optimise or what trains (lr, weight decay, epochs, LoRA settings, a frozen-encoder "
        "strategy): one model load, each batch read once. Each stays its own run, with the id and results it has "
        "alone. 1 = one at a time. Memory grows with it: each run keeps its own pooler, head and optimizer.",
        at_least=1)

    def __post_init__(self) -> None:
        settle(self)


EXEC_OPTIONS: dict[str, ExecOption] = declared(ExecOptions)  # type: ignore[assignment]
