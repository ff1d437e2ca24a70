"""Prepare an engine for a model: `--engine NAME` -> a runner, from the cache when the weights were seen before.

`prepare_engine(model, part=..., engine=..., device=..., precision=..., frames=..., crop=..., cache_root=...)`
returns a `PreparedEngine`: call it on pixels [B, T, 3, crop, crop] for logits (`classifier`) or tokens
(`encoder`). What it does:
1. `candidates` turns `auto` into engines to try in order: on a GPU (CUDA, MPS) the eager model under the
   run's autocast precision, today's path; on a CPU `AUTO_CPU`, the engines measured fastest, each taken only
   if it keeps the answers on this model (step 4), then fp32.
2. An engine that cannot run here (CPU-only on a GPU, a package missing) falls back to `fp32`.
3. A cached entry of this engine for these exact weights (`store.engine_key`) is opened as it is; a rejected
   one falls back at once, with the reason it was rejected.
4. Otherwise the engine is built, then checked once against fp32 on the probe clips (`check`): within
   tolerance it is used and recorded, else recorded as rejected and `fp32` runs. Either way the next start
   reads the verdict from the cache instead of checking again.
A named engine that falls back logs one warning line, `engine X cannot run this model (reason): using fp32`:
never a wrong answer. Under `auto` the line (logged as info: fp32 is then what `auto` means for this model)
names every engine tried; `auto` settles silently on a later candidate (`PreparedEngine.passed_over` says why
the earlier ones did not run). `among` replaces `auto`'s candidates with a caller's own list (`runner release
--space` tries the engines a plain Space can run).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import vjepa_core.inference.engines.store as store
from vjepa_core.errors import UserError
from vjepa_core.inference.engines.base import ENGINES, Engine, EngineUnfit, Runner, model_part
from vjepa_core.inference.engines.check import Agreement, agreement, probe_clips, run_batched
from vjepa_core.inference.engines.eager import FP32
from vjepa_core.models.device import resolve_precision
from vjepa_core.models.layers import feature_layers
from vjepa_core.store.atomic import exclusive, staged_dir

log = logging.getLogger(__name__)

AUTO = "auto"
ENGINE_ENV = "VJEPA_ENGINE"  # the default engine where none is given (`auto` when unset)
EAGER = ("fp32", "bf16", "fp16")  # the model itself, under its precision: nothing to check, nothing to cache
# Tried in order; the first that keeps the answers runs. Both quantize the encoder only. On the ViT-L-shaped model
# (2 cores, AVX-512 VNNI): fp32 eager 13.2-16.2 s per clip, openvino-int8 7.2-9.9 s (the fastest in every bench run:
# 1.64-1.90x), ort-int8 8.4-9.6 s (1.37-1.55x); each prepares in ~105 s, once per weights. Where openvino-int8's
# check rejects it (4 of the 5 trained tiny-jepa strategies), ort-int8 runs.
AUTO_CPU = ("openvino-int8", "ort-int8")


def engine_names() -> list[str]:
    return [AUTO, *ENGINES]


def default_engine() -> str:
    """$VJEPA_ENGINE, else `auto`: what runs when a command or a `Predictor` is given no engine."""
    return os.environ.get(ENGINE_ENV) or AUTO


def check_engine_name(name: str) -> None:
    """A `UserError` naming the choices unless `name` is an engine or `auto`."""
    if name not in engine_names():
        raise UserError(f"--engine: unknown {name!r} (choose from {', '.join(engine_names())})")


def candidates(name: str, device: torch.device, precision: str = "auto") -> tuple[str, ...]:
    """The engines `name` stands for on `device`, to try in order; unknown names are a `UserError`."""
    check_engine_name(name)
    if name != AUTO:
        return (name,)
    if device.type in ("cuda", "mps"):
        return (resolve_precision(precision, device),)  # today's autocast path: fp32, bf16 or fp16 eager
    return AUTO_CPU


def resolve_engine(name: str, device: torch.device, precision: str = "auto") -> str:
    """The first engine `name` stands for on `device` (see `candidates`)."""
    return candidates(name, device, precision)[0]


@dataclass
class PreparedEngine:
    """A model part ready to run: `prepared(pixels)` -> logits or tokens."""

    engine: str  # what runs, after `auto` and any fallback
    requested: str
    part: str
    run: Runner
    fallback: str | None = None  # why the requested engine is not the one running
    passed_over: tuple[str, ...] = ()  # `auto`: the candidates tried before this one, each "name: why not"
    cached: bool = False  # opened from the cache rather than built
    setup_s: float = 0.0
    check: Agreement | None = None
    key: str | None = None
    rejected: str | None = None  # `keep_rejected`: why the check would not let this engine run (it runs anyway)
    keep_alive: Any = field(default=None, repr=False)  # a temporary folder the runner still reads

    @property
    def needs_model(self) -> bool:
        """Whether the runner uses the torch model's weights (eager engines); if not, the caller may free them."""
        return self.engine in EAGER
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.run(pixels)


class Probes:
    """The probe clips for one part and clip shape, with fp32's outputs on them computed once, when first asked."""

    def __init__(self, part: torch.nn.Module, frames: int, crop: int) -> None:
        self.part, self.frames, self.crop = part, frames, crop

    @functools.cached_property
    def clips(self) -> torch.Tensor:
        return probe_clips(self.frames, self.crop)

    @functools.cached_property
    def reference(self) -> torch.Tensor:
        return run_batched(FP32.build(self.part, self.clips), self.clips)


def prepare_engine(model: torch.nn.Module, *, part: str, engine: str = AUTO, device: torch.device,
                   precision: str = "auto", frames: int, crop: int, cache_root: Path | None = None,
                   model_name: str = "", max_bytes: int = store.MAX_BYTES, probes: Probes | None = None,
                   among: tuple[str, ...] | None = None, keep_rejected: bool = False) -> PreparedEngine:
    """`model`'s `part` under `engine` (see the module docstring); `model` stays as it is. With `engine="auto"`,
    `among` (engine names, in order) replaces the candidates `auto` stands for on `device`.

    `keep_rejected` is for measuring, never for answers: entries the check rejects keep their files, and a named
    engine the check rejects is returned to run anyway, its reason in `rejected` (`auto` still passes it over)."""
    start = time.perf_counter()
    module = model_part(model, part)
    probes = probes or Probes(module, frames, crop)
    reasons = []
    tried = among if engine == AUTO and among is not None else candidates(engine, device, precision)
    for name in tried:
        try:
            prepared = _prepare(ENGINES[name], module, part=part, device=device, frames=frames, crop=crop,
                                layers=feature_layers(model), cache_root=cache_root, model_name=model_name,
                                max_bytes=max_bytes, probes=probes, keep_files=keep_rejected,
                                run_rejected=keep_rejected and engine != AUTO)
            if reasons:
                log.info("engine auto: %s (%s)", name, "; ".join(reasons))
                prepared.passed_over = tuple(reasons)
            break
        except EngineUnfit as unfit:
            reasons.append(f"{name}: {unfit}" if engine == AUTO else str(unfit))
    else:  # `auto` settling on fp32 is what it promises (the fastest that keeps the answers); a named engine warns
        log.log(logging.INFO if engine == AUTO else logging.WARNING, "engine %s cannot run this model (%s): using fp32",
                engine, "; ".join(reasons))
        prepared = PreparedEngine("fp32", engine, part, FP32.build(module, _example(frames, crop)),
                                  fallback="; ".join(reasons))
    prepared.requested, prepared.setup_s = engine, time.perf_counter() - start
    return prepared


def _prepare(engine: Engine, module: torch.nn.Module, *, part: str, device: torch.device, frames: int, crop: int,
             layers: tuple[int, ...], cache_root: Path | None, model_name: str, max_bytes: int,
             probes: Probes, keep_files: bool = False, run_rejected: bool = False) -> PreparedEngine:
    example = _example(frames, crop)
    if engine.name in EAGER:  # eager: the reference itself, or today's autocast path on a GPU
        return PreparedEngine(engine.name, engine.name, part, engine.build(module, example))
    if engine.cpu_only and device.type != "cpu":
        raise EngineUnfit(f"it runs on the CPU only, this model is on {device.type}")
    missing = engine.missing()
    if missing:
        raise EngineUnfit(f"it needs {', '.join(missing)}: pip install {' '.join(missing)}")
    key = store.engine_key(engine=engine.name, part=part, module=module, feature_layers=layers, frames=frames,
                           crop=crop)
    describe = {"key": key, "engine": engine.name, "part": part, "model": model_name, "frames": frames, "crop": crop}
    if cache_root is None:
        return _uncached(engine, module, example, probes, part=part, key=key, run_rejected=run_rejected)
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f"{key}.lock"):  # a second process preparing the same weights waits, then reads
        entry = store.read_entry(root, key)
        if entry is None:
            entry = _build_entry(engine, module, example, probes, root=root, describe=describe, keep_files=keep_files)
            store.trim(root, max_bytes, keep=key)
            cached = False
        else:
            cached = True
        store.touch(root, key)
    rejected = (entry.get("reason") or "it was rejected before") if entry["status"] != "ok" else None
    if rejected is not None and not (run_rejected and entry.get("files_kept")):
        raise EngineUnfit(rejected)
    check = Agreement(**entry["check"]) if entry.get("check") else None
    runner = _opened_on_first_call(engine, root / key) if engine.cacheable else engine.build(module, example)
    return PreparedEngine(engine.name, engine.name, part, runner, cached=cached, check=check, key=key,
                          rejected=rejected)


def _opened_on_first_call(engine: Engine, folder: Path) -> Runner:
    """A runner that opens the engine's files when first called: a caller that frees the torch model first
    (`PreparedEngine.needs_model` is False) never holds both in memory."""
    opened: list[Runner] = []

    def run(pixels: torch.Tensor) -> torch.Tensor:
        if not opened:
            opened.append(engine.open(folder))
        return opened[0](pixels)

    return run


def _build_entry(engine: Engine, module: torch.nn.Module, example: torch.Tensor, probes: Probes, *, root: Path,
                 describe: dict[str, Any], keep_files: bool = False) -> dict[str, Any]:
    """Build and check the engine into `root/<key>`; a failure is recorded as a rejected entry (no files, unless
    `keep_files` and the engine was built: the check alone rejected it)."""
    start = time.perf_counter()
    with staged_dir(root / describe["key"]) as folder:
        try:
            runner = _build(engine, module, example, folder)
            check = agreement(describe["part"], probes.reference, run_batched(runner, probes.clips))
            del runner
            gc.collect()  # an exported model's session: freed before the entry is opened again from its place
            reason = None if check.passed else f"answers differ from fp32's: {check.describe()}"
        except EngineUnfit as unfit:
            check, reason = None, str(unfit)
        files_kept = reason is None or (keep_files and check is not None)
        if not files_kept:
            for item in folder.iterdir():  # a rejected entry keeps only its verdict
                item.unlink()
        entry = {**describe, "status": "ok" if reason is None else "rejected", "reason": reason,
                 "files_kept": files_kept, "check": check.as_dict() if check else None,
                 "setup_s": round(time.perf_counter() - start, 2)}
        store.write_entry(folder, entry)
    return entry


def _uncached(engine: Engine, module: torch.nn.Module, example: torch.Tensor, probes: Probes, *, part: str,
              key: str, run_rejected: bool = False) -> PreparedEngine:
    folder = tempfile.TemporaryDirectory(prefix="vjepa-engine-") if engine.cacheable else None
    runner = _build(engine, module, example, Path(folder.name) if folder else None)
    check = agreement(part, probes.reference, run_batched(runner, probes.clips))
    rejected = None if check.passed else f"answers differ from fp32's: {check.describe()}"
    if rejected is not None and not run_rejected:
        raise EngineUnfit(rejected)
    return PreparedEngine(engine.name, engine.name, part, runner, check=check, key=key, keep_alive=folder,
                          rejected=rejected)


def _build(engine: Engine, module: torch.nn.Module, example: torch.Tensor, folder: Path | None) -> Runner:
    if not engine.cacheable:
        return engine.build(module, example)
    assert folder is not None
    engine.export(module, example, folder)
    return engine.open(folder)


def _example(frames: int, crop: int) -> torch.Tensor:
    return torch.zeros(2, frames, 3, crop, crop)

