"""What an inference engine is: the part of a model it runs, and the one interface every engine has.

A *part* is a plain `torch.nn.Module` cut from a `VJEPA2ForVideoClassification` (LoRA, feature layers and
all), with one tensor in and one out:
- `classifier`: pixels [B, T, 3, crop, crop] -> logits [B, labels] (`runner predict`, the demo);
- `encoder`: pixels [B, T, 3, crop, crop] -> tokens [B, N, D], the encoder's output as the token cache
  stores it (`runner embed`).

An `Engine` turns a part into a `Runner` (pixels -> the same tensor, computed its own way): eager PyTorch,
dynamically quantized PyTorch, an exported ONNX Runtime or OpenVINO model. Engines whose result is files
(`cacheable`) export them into a folder, which `vjepa_core.inference.engines.store` keeps keyed by the
weights, and open them from there the next time. `requires` names the Python packages an engine needs and
`cpu_only` says it runs on the CPU alone: where either does not hold, the caller falls back to fp32
(`EngineUnfit` carries the one-line reason).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

PARTS = ("classifier", "encoder")
Runner = Callable[[torch.Tensor], torch.Tensor]


class EngineUnfit(Exception):
    """This engine cannot run this model here (a missing package, a failed export, answers off fp32's).

    Its message is the reason, one line; the caller falls back to fp32 and says so."""


class ClassifierPart(torch.nn.Module):
    """pixels [B, T, 3, crop, crop] -> logits [B, labels]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values_videos=pixel_values_videos).logits


class EncoderPart(torch.nn.Module):
    """pixels [B, T, 3, crop, crop] -> tokens [B, N, D]: what `encode_tokens` caches (feature layers included,
    their hooks sit on the encoder)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = model.vjepa2.encoder

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixel_values_videos=pixel_values_videos).last_hidden_state


def model_part(model: torch.nn.Module, part: str) -> torch.nn.Module:
    if part not in PARTS:
        raise ValueError(f"unknown model part {part!r} (one of {', '.join(PARTS)})")
    return (ClassifierPart if part == "classifier" else EncoderPart)(model).eval()


@dataclass(frozen=True)
class Engine:
    """One way to run a model part.

    An engine that is not `cacheable` implements `build`. A `cacheable` one implements `export` (write files
    into a folder) and `open` (a runner from those files): preparing is then paid once per weights."""

    name: str
    summary: str
    cacheable: bool = False
    cpu_only: bool = True
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """The packages this engine needs that are not installed."""
        return [package for package in self.requires if importlib.util.find_spec(package) is None]

    def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
        """A runner for `part` and inputs shaped like `example` [B, T, 3, crop, crop]. Raises `EngineUnfit`."""
        raise NotImplementedError(f"engine {self.name} is built with export + open")

    def export(self, part: torch.nn.Module, example: torch.Tensor, folder: Path) -> None:
        """Write what `open` needs into the empty `folder`. Raises `EngineUnfit`."""
        raise NotImplementedError(f"engine {self.name} keeps nothing on disk")

    def open(self, folder: Path) -> Runner:
        """A runner from the files `export` wrote."""
        raise NotImplementedError(f"engine {self.name} keeps nothing on disk")


ENGINES: dict[str, Engine] = {}


def in_encoder(node: str) -> bool:
    """Whether a node of an exported graph belongs to the encoder, from its name (ONNX
    `/model/vjepa2/encoder/layer.3/mlp/fc1/MatMul`, OpenVINO `model.vjepa2.encoder.layer.3.mlp.fc1/linear_7/...`).
    The int8 engines quantize the encoder's weight matmuls only: the head (attentive pooler, classifier) stays
    fp32, where int8 moved the probabilities most (measured: see `onnx.quantize_int8`)."""
    return "encoder" in re.split(r"[^A-Za-z0-9_]+", node)


def head_matmuls(matmuls: list[str], graph: str) -> list[str]:
    """Of a graph's weight matmuls (their names), those the int8 engines leave in fp32: the ones outside the
    encoder. Raises `EngineUnfit` when none is in it (nodes not named by module): nothing would be int8."""
    head = [name for name in matmuls if not in_encoder(name)]
    if len(head) == len(matmuls):
        raise EngineUnfit(f"no encoder matmul is named in the {graph}")
    return head


def register(engine: Engine) -> Engine:
    if engine.name in ENGINES:
        raise ValueError(f"engine {engine.name!r} is already registered")
    ENGINES[engine.name] = engine
    return engine


def threads() -> int:
    """The threads an engine may use: torch's (its default is the machine's cores, `torch.set_num_threads`
    changes it), so that every engine is measured and run with the same."""
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
