"""The engine registry: every `--engine` name, what each is, and what `auto` means where, declared once.

An `Engine` turns a model part (`parts`: pixels [B, T, 3, crop, crop] -> logits or tokens) into a `Runner` (pixels
-> the same tensor, computed its own way). Each engine module registers its engines with their place in `auto`'s
order on a CPU (`auto_cpu`) and in a released Space (`space`); every name list, help text and `auto` order is
derived from here (`engine_names`, `auto_order`, `engine_help`). This module imports no torch, so that help texts
cost nothing; the engines import their libraries when they build.

Engines whose result is files (`Int8Engine`) write them into a folder, which `store` keeps keyed by the weights;
`requires` names the Python packages an engine needs and `cpu_only` says it runs on the CPU alone: where either
does not hold, the caller falls back to fp32 (`EngineUnfit` carries the one-line reason).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vjepa_core.errors import UserError, did_you_mean

if TYPE_CHECKING:
    import torch

Runner = Callable[["torch.Tensor"], "torch.Tensor"]

AUTO = "auto"
ENGINE_ENV = "VJEPA_ENGINE"  # the default engine where none is given (`auto` when unset)
REFERENCE = "fp32"  # the eager model as trained: what every other engine is checked against, and falls back to
CPU, GPU, SPACE = "cpu", "gpu", "space"  # where `auto` has a meaning of its own


class EngineUnfit(Exception):
    """This engine cannot run this model here (a missing package, a failed export, answers off fp32's).

    Its message is the reason, one line; the caller falls back to fp32 and says so."""


@dataclass(frozen=True)
class Engine:
    """One way to run a model part: `build` makes a runner of it.

    `auto_cpu` and `space` are its place (1 first) in `auto`'s order on a CPU and in a released Space; `eager`
    engines run the torch model itself, under autocast to their name's precision (`auto` on a GPU)."""

    name: str
    summary: str
    cpu_only: bool = True
    requires: tuple[str, ...] = ()
    eager: bool = False
    auto_cpu: int | None = None
    space: int | None = None

    @property
    def cacheable(self) -> bool:
        """Whether the engine is files, kept in the engine cache (else it is built again at each start)."""
        return False

    def missing(self) -> list[str]:
        """The packages this engine needs that are not installed."""
        return [package for package in self.requires if importlib.util.find_spec(package) is None]

    def build(self, part: Any, example: Any) -> Runner:
        """A runner for `part` and inputs shaped like `example` [B, T, 3, crop, crop]. Raises `EngineUnfit`."""
        raise NotImplementedError(f"engine {self.name} is made of files: Int8Engine.export + open")


@dataclass(frozen=True)
class Int8Engine(Engine):
    """An engine that quantizes the encoder's weight matmuls to int8 and keeps the head (pooler, classifier) in
    fp32. Any of the encoder's blocks can stay fp32 too (`fp32_blocks`): `mixed` measures which blocks move the
    answers most and keeps those. The part is converted once (`convert`) and quantized as often as asked; the
    result is files (`quantize`, `export`), opened by `open`, which the engine cache keeps by the weights."""

    @property
    def cacheable(self) -> bool:
        return True

    def convert(self, part: Any, example: Any, workdir: Path) -> Any:
        """The part in this engine's fp32 form (files may go to `workdir`, a scratch folder). Raises `EngineUnfit`."""
        raise NotImplementedError

    def blocks(self, converted: Any) -> list[int]:
        """The encoder blocks the converted part's weight matmuls belong to, in order."""
        raise NotImplementedError

    def quantize(self, converted: Any, folder: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> None:
        """Write the int8 engine, `fp32_blocks` left fp32, into the empty `folder` (what `open` reads)."""
        raise NotImplementedError

    def open(self, folder: Path) -> Runner:
        """A runner from the files `quantize` wrote."""
        raise NotImplementedError

    def trial(self, converted: Any, fp32_blocks: frozenset[int]) -> Runner:
        """A runner of the converted part quantized so, kept nowhere (measuring which blocks to keep fp32)."""
        with tempfile.TemporaryDirectory(prefix="vjepa-trial-") as folder:
            self.quantize(converted, Path(folder), fp32_blocks=fp32_blocks)
            return self.open(Path(folder))  # read into memory: the files may go

    def export(self, part: Any, example: Any, folder: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> None:
        """Convert and quantize in one go (no check): the engine's files into `folder`."""
        with tempfile.TemporaryDirectory(prefix="vjepa-convert-") as workdir:
            self.quantize(self.convert(part, example, Path(workdir)), folder, fp32_blocks=fp32_blocks)


# The names of an exported part's input (pixels [B, T, 3, crop, crop]) and output (logits or tokens) in its files.
INPUT, OUTPUT = "pixel_values_videos", "output"

ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    if engine.name in ENGINES or engine.name == AUTO:
        raise ValueError(f"engine {engine.name!r} is already registered")
    ENGINES[engine.name] = engine
    return engine


def engine_names() -> list[str]:
    return [AUTO, *ENGINES]


def auto_order(place: str) -> tuple[str, ...]:
    """The engines `auto` tries in turn on a CPU or in a Space (the first that keeps the answers runs; fp32 when
    none does). On a GPU `auto` is the eager engine of the run's precision instead (`prepare.candidates`)."""
    if place not in (CPU, SPACE):
        raise ValueError(f"auto has no order of engines on {place!r}")
    ranked = [({CPU: engine.auto_cpu, SPACE: engine.space}[place], name) for name, engine in ENGINES.items()]
    return tuple(name for rank, name in sorted(pair for pair in ranked if pair[0] is not None))


def space_choices() -> tuple[str, ...]:
    """`runner release --engine`: auto, the engines a Space can run, or fp32 (no engine: transformers)."""
    return (AUTO, *auto_order(SPACE), REFERENCE)


def default_engine() -> str:
    """$VJEPA_ENGINE, else `auto`: what runs when a command or a `Predictor` is given no engine."""
    return os.environ.get(ENGINE_ENV) or AUTO


def check_engine_name(name: str, choices: tuple[str, ...] | list[str] | None = None) -> None:
    """A `UserError` naming the choices unless `name` is one of them (default: every engine and `auto`)."""
    choices = list(choices or engine_names())
    if name not in choices:
        raise UserError(f"--engine: unknown {name!r} (choose from {', '.join(choices)}){did_you_mean([name], choices)}")


def auto_help(place: str = CPU) -> str:
    """What `auto` means, in one sentence per place, from the registry."""
    if place == SPACE:
        return (f"auto: the first of {', '.join(auto_order(SPACE))} that keeps fp32's answers on the run's "
                f"validation views, else none ({REFERENCE}: the app runs transformers)")
    gpu = "/".join(name for name, engine in ENGINES.items() if engine.eager)
    return (f"auto: on a CPU the first of {', '.join(auto_order(CPU))} that keeps fp32's answers (checked on the "
            f"run's validation views once per weights, cached under <results>/engines), else {REFERENCE}; on a GPU "
            f"the run's autocast ({gpu})")


def engine_help() -> str:
    """The `--engine` help of every command that runs a trained model (runner predict, embed, demo)."""
    named = "; ".join(f"{name} ({engine.summary})" for name, engine in ENGINES.items())
    return f"How the model runs. {auto_help()}. Or by name: {named}."


def in_encoder(node: str) -> bool:
    """Whether a node of an exported graph belongs to the encoder, from its name (ONNX
    `/model/vjepa2/encoder/layer.3/mlp/fc1/MatMul`, OpenVINO `model.vjepa2.encoder.layer.3.mlp.fc1/linear_7/...`).
    The int8 engines quantize the encoder's weight matmuls only: the head (attentive pooler, classifier) stays
    fp32, where int8 moved the probabilities most (docs/benchmarks/engines.md)."""
    return "encoder" in re.split(r"[^A-Za-z0-9_]+", node)


ROPE_SWAP = "rope_swap"  # the rotary pair swap's module name (`rope.RopeSwap`): int8 engines keep its matmul fp32
BLOCK = re.compile(r"(?:^|[./])encoder[./]layer\.(\d+)(?:[./]|$)")


def encoder_block(node: str) -> int | None:
    """The encoder block (transformer layer) a node belongs to, from its name; None outside the encoder's blocks."""
    match = BLOCK.search(node)
    return int(match.group(1)) if match else None


def fp32_matmuls(matmuls: list[str], graph: str, fp32_blocks: frozenset[int] = frozenset()) -> list[str]:
    """Of a graph's weight matmuls (their names), those an int8 engine leaves in fp32: the head's (outside the
    encoder), the rotary swaps (`ROPE_SWAP`) and those of the encoder blocks in `fp32_blocks`. Raises
    `EngineUnfit` when no matmul is in the encoder (nodes not named by module): nothing would be int8."""
    head = [name for name in matmuls if not in_encoder(name)]
    if len(head) == len(matmuls):
        raise EngineUnfit(f"no encoder matmul is named in the {graph}")
    return head + [name for name in matmuls
                   if in_encoder(name) and (encoder_block(name) in fp32_blocks or ROPE_SWAP in name)]


def threads() -> int:
    """The threads an engine may use: torch's (its default is the machine's cores, `torch.set_num_threads`
    changes it), so that every engine is measured and run with the same."""
    import torch

    return torch.get_num_threads()


# Loggers that speak while a model is traced or a quantizer is imported: transformers (config notes read while
# tracing) and torch's C++ extension loader (imported by quantizers: "No CUDA runtime is found").
NOISY = ("transformers", "torch.utils.cpp_extension")


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Silence what exporters and quantizers print (progress lines, warnings, tables, advice) for one block:
    none of it is for the user, and a failure still raises."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in (*NOISY, *loggers)]
    for logger, _ in saved:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def first_line(error: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
