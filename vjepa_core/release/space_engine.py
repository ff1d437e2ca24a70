"""The Space's inference engine: the released classifier exported for ONNX Runtime, checked against fp32.

`prepare_space_engine(model_dir, choice=..., cache_root=...)` -> `SpaceEngine`. It opens `model_dir` as plain
transformers does (weights in fp32), prepares its classifier (pixels [B, T, 3, crop, crop] -> logits [B, labels])
with vjepa-lab's engine code (ONNX export, int8 quantization, the agreement check on the probe clips, the engine
cache keyed by the weights) and takes the first of `SPACE_ENGINES` that keeps the answers. It writes into
`model_dir/onnx/` (`ENGINE_DIR`):
- the graph: `model.int8.onnx` (`ort-int8`) or `model.onnx` (`ort-fp32`);
- `engine.json` (`ENGINE_FILE`): the engine, the graph's file, its input and output (name, shape, dtype), that it
  runs one clip per call, its agreement with fp32 on the probe clips, and the versions it was checked with.
The Space's app runs that graph when onnxruntime imports, else the transformers model in `model_dir`. When no
engine keeps the answers (or cannot run here), nothing is written: `SpaceEngine.engine` is None with the reason.

Only ONNX Runtime engines: the Space then needs one small pip package and the app one code path. `ort-fp32` (the
same graph, not quantized: fp32's answers on ONNX Runtime's kernels) is the second choice, for a model whose
probabilities int8 moves beyond the check's tolerance; OpenVINO (`auto`'s second choice in vjepa-lab) would
add a second runtime to the Space.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa_core.inference.engines import AUTO, ENGINES, PreparedEngine, prepare_engine
from vjepa_core.inference.engines.check import CHECK_LIMIT, PROB_TOLERANCE, Agreement
from vjepa_core.inference.engines.onnx import FP32_GRAPH, INPUT, INT8_GRAPH, OUTPUT
from vjepa_core.inference.engines.store import ENTRY_FILE
from vjepa_core.release.model import load_plain

SPACE_ENGINES = ("ort-int8", "ort-fp32")  # tried in order by `--engine auto`
ENGINE_CHOICES = (AUTO, *SPACE_ENGINES, "fp32")  # `runner release --engine`; fp32: no engine, transformers only
ENGINE_DIR = "onnx"
ENGINE_FILE = "engine.json"
GRAPHS = {"ort-int8": INT8_GRAPH, "ort-fp32": FP32_GRAPH}


@dataclass(frozen=True)
class SpaceEngine:
    """What the Space runs: `engine` (an ONNX Runtime engine) with `check`, or None (transformers fp32) and why."""

    engine: str | None
    reason: str = ""  # why no engine runs, or which were passed over and why
    check: Agreement | None = None

    @property
    def graph(self) -> str | None:
        """The graph's path in the Space folder's model folder, e.g. `onnx/model.int8.onnx`."""
        return f"{ENGINE_DIR}/{GRAPHS[self.engine]}" if self.engine else None

    def describe(self) -> str:
        """One line for `runner release`."""
        if self.engine is None:
            return f"none ({self.reason}): the Space runs transformers fp32"
        assert self.check is not None
        passed_over = f"; passed over {self.reason}" if self.reason else ""
        return (f"{self.engine}, max |prob diff| {self.check.max_prob_diff:.4f} vs fp32 on {self.check.probes} probe "
                f"clips (limit {CHECK_LIMIT:.3f}){passed_over}")


def prepare_space_engine(model_dir: Path, *, choice: str = AUTO, cache_root: Path | None = None) -> SpaceEngine:
    """Export, check and write the Space's engine into `model_dir / ENGINE_DIR` (see the module docstring)."""
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"unknown Space engine {choice!r}")
    if choice == "fp32":
        return SpaceEngine(None, "--engine fp32")
    model = load_plain(model_dir).float()  # an fp16/bf16 release: its rounded weights, computed in fp32
    frames, crop = int(model.config.num_frames), int(model.config.crop_size)
    prepared = prepare_engine(model, part="classifier", engine=AUTO, device=torch.device("cpu"), frames=frames,
                              crop=crop, cache_root=cache_root, model_name=str(model_dir),
                              among=SPACE_ENGINES if choice == AUTO else (choice,))
    if prepared.engine not in SPACE_ENGINES:
        return SpaceEngine(None, prepared.fallback or f"{prepared.engine} is not a Space engine")
    assert prepared.check is not None  # a checked engine: built here or read from the cache with its verdict
    _write_engine(model_dir / ENGINE_DIR, prepared, cache_root=cache_root, frames=frames, crop=crop,
                  labels=int(model.config.num_labels))
    return SpaceEngine(prepared.engine, "; ".join(prepared.passed_over), prepared.check)


def _write_engine(folder: Path, prepared: PreparedEngine, *, cache_root: Path | None, frames: int, crop: int,
                  labels: int) -> None:
    source = cache_root / prepared.key if cache_root is not None else Path(prepared.keep_alive.name)
    folder.mkdir()
    for item in source.iterdir():  # the graph (and external weight files of a graph beyond 2 GB)
        if item.is_file() and item.name != ENTRY_FILE:
            shutil.copyfile(item, folder / item.name)
    check = prepared.check
    assert check is not None
    spec = {"engine": prepared.engine, "summary": ENGINES[prepared.engine].summary, "graph": GRAPHS[prepared.engine],
            "input": {"name": INPUT, "shape": ["batch", frames, 3, crop, crop], "dtype": "float32"},
            "output": {"name": OUTPUT, "shape": ["batch", labels], "meaning": "logits"},
            "clips_per_call": 1,
            "check": {"against": "this folder's model in fp32 (transformers)", "tolerance": PROB_TOLERANCE,
                      "probe_limit": CHECK_LIMIT, "probe_clips": check.probes, "max_prob_diff": check.max_prob_diff,
                      "prob_bound": check.prob_bound, "top1_agreement": check.top1_agreement},
            "versions": {name: importlib.metadata.version(name) for name in ("onnxruntime", "torch", "transformers")}}
    (folder / ENGINE_FILE).write_text(json.dumps(spec, indent=2) + "\n")
