"""The Space's inference engine: the released classifier as an int8 engine's files, checked against fp32.

`prepare_space_engine(model_dir, choice=..., cache_root=..., evidence=...)` -> `SpaceEngine`. It opens `model_dir`
as plain transformers does (weights in fp32), prepares its classifier (pixels [B, T, 3, crop, crop] -> logits
[B, labels]) with vjepa-lab's engine code (export, int8 quantization with the most sensitive encoder blocks kept
fp32 as needed, the check against fp32 on the run's validation views, the engine cache keyed by the weights) and
takes the first engine of a Space's `auto` order that keeps the answers: `openvino-int8` (OpenVINO), then
`ort-int8` (ONNX Runtime), as on a CPU in vjepa-lab. It writes into the engine's folder of `model_dir`
(`SPACE_FORMATS`: `openvino/` or `onnx/`):
- the engine's files, as the engine cache holds them;
- `engine.json` (`ENGINE_FILE`): the engine, the runtime that runs it (its pip package and the options to open
  the graph with), the graph's file, its input and output (name, shape, dtype), that it runs one clip per call,
  the evidence it was checked on with its agreement with fp32 there (top-1, max and 99th percentile |prob
  diff|), the encoder blocks kept fp32, and the versions it was checked with.
The Space's app runs that graph when its runtime imports, else the transformers model in `model_dir`. When no
engine keeps the answers (or cannot run here), nothing is written: `SpaceEngine.engine` is None with the reason.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa_core.inference.engines import AUTO, ENGINES, REFERENCE, space_choices
from vjepa_core.inference.engines import onnx as ort_files
from vjepa_core.inference.engines import openvino as openvino_files
from vjepa_core.inference.engines.base import INPUT, OUTPUT
from vjepa_core.inference.engines.check import Agreement, Evidence
from vjepa_core.inference.engines.mixed import Plan
from vjepa_core.inference.engines.prepare import PreparedEngine, prepare_engine
from vjepa_core.inference.engines.store import ENTRY_FILE
from vjepa_core.release.model import load_plain

ENGINE_FILE = "engine.json"


@dataclass(frozen=True)
class SpaceFormat:
    """How a Space keeps and runs one engine's files: in `folder` of the model folder, `graph` opened by the pip
    package `runtime` with `options`."""

    folder: str
    graph: str
    runtime: str
    options: dict[str, str]


SPACE_FORMATS = {
    openvino_files.OPENVINO_INT8.name: SpaceFormat("openvino", openvino_files.GRAPH, "openvino",
                                                   openvino_files.RUN_CONFIG),
    ort_files.ORT_INT8.name: SpaceFormat("onnx", ort_files.GRAPH, "onnxruntime", {}),
}


@dataclass(frozen=True)
class SpaceEngine:
    """What the Space runs: `engine` (one of `SPACE_FORMATS`) with its `check` and `plan`, or None (transformers
    fp32) and why."""

    engine: str | None
    reason: str = ""  # why no engine runs, or which were passed over and why
    check: Agreement | None = None
    plan: Plan | None = None

    @property
    def format(self) -> SpaceFormat | None:
        return SPACE_FORMATS[self.engine] if self.engine else None

    @property
    def runtime(self) -> str | None:
        """The pip package that runs the engine (None: the Space runs transformers)."""
        return self.format.runtime if self.format else None

    @property
    def graph(self) -> str | None:
        """The graph's path in the Space folder's model folder, e.g. `openvino/model.xml`."""
        return f"{self.format.folder}/{self.format.graph}" if self.format else None

    @property
    def spec(self) -> str | None:
        """`engine.json`'s path in the model folder, e.g. `openvino/engine.json`."""
        return f"{self.format.folder}/{ENGINE_FILE}" if self.format else None

    def describe(self) -> str:
        """One line for `runner release`."""
        if self.engine is None:
            return f"none ({self.reason}): the Space runs transformers fp32"
        assert self.check is not None
        kept = f", {self.plan.describe()}" if self.plan is not None else ""
        passed_over = f"; passed over {self.reason}" if self.reason else ""
        return f"{self.engine}{kept}: {self.check.describe()}{passed_over}"


def prepare_space_engine(model_dir: Path, *, choice: str = AUTO, cache_root: Path | None = None,
                         evidence: Evidence | None = None, progress: bool = True) -> SpaceEngine:
    """Export, check and write the Space's engine into its folder of `model_dir` (see the module docstring).
    `evidence` is the run's validation views (None: probe clips)."""
    if choice not in space_choices():
        raise ValueError(f"unknown Space engine {choice!r}")
    if choice == REFERENCE:
        return SpaceEngine(None, f"--engine {REFERENCE}")
    model = load_plain(model_dir).float()  # an fp16/bf16 release: its rounded weights, computed in fp32
    frames, crop = int(model.config.num_frames), int(model.config.crop_size)
    prepared = prepare_engine(model, part="classifier", engine=choice, device=torch.device("cpu"), frames=frames,
                              crop=crop, cache_root=cache_root, model_name=str(model_dir), evidence=evidence,
                              space=True, progress=progress)
    if prepared.engine == REFERENCE:
        return SpaceEngine(None, prepared.fallback or "")
    assert prepared.check is not None  # a checked engine: built here or read from the cache with its verdict
    _write_engine(model_dir / SPACE_FORMATS[prepared.engine].folder, prepared, cache_root=cache_root,
                  frames=frames, crop=crop, labels=int(model.config.num_labels))
    return SpaceEngine(prepared.engine, "; ".join(prepared.passed_over), prepared.check, prepared.plan)


def _write_engine(folder: Path, prepared: PreparedEngine, *, cache_root: Path | None, frames: int, crop: int,
                  labels: int) -> None:
    source = cache_root / prepared.key if cache_root is not None else Path(prepared.keep_alive.name)
    folder.mkdir()
    for item in source.iterdir():  # the graph (and external weight files of a graph beyond 2 GB)
        if item.is_file() and item.name != ENTRY_FILE:
            shutil.copyfile(item, folder / item.name)
    check, form = prepared.check, SPACE_FORMATS[prepared.engine]
    assert check is not None
    spec = {"engine": prepared.engine, "summary": ENGINES[prepared.engine].summary,
            "runtime": {"package": form.runtime, "options": form.options}, "graph": form.graph,
            "input": {"name": INPUT, "shape": ["batch", frames, 3, crop, crop], "dtype": "float32"},
            "output": {"name": OUTPUT, "shape": ["batch", labels], "meaning": "logits"},
            "clips_per_call": 1,
            "check": {"against": "this folder's model in fp32 (transformers)", **check.as_dict()},
            "plan": prepared.plan.as_dict() if prepared.plan is not None else None,
            "versions": {name: importlib.metadata.version(name) for name in (form.runtime, "torch", "transformers")}}
    (folder / ENGINE_FILE).write_text(json.dumps(spec, indent=2) + "\n")
