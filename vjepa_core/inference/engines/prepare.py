"""Prepare an engine for a model: `--engine NAME` -> a runner, from the cache when the weights were seen before.

`prepare_engine(model, part=..., engine=..., device=..., precision=..., frames=..., crop=..., cache_root=...,
evidence=...)` returns a `PreparedEngine`: call it on pixels [B, T, 3, crop, crop] for logits (`classifier`) or
tokens (`encoder`). What it does:
1. `candidates` turns `auto` into engines to try in order: on a CPU the registry's `auto` order, on a GPU (CUDA,
   MPS) the eager model under the run's autocast precision; `space=True` takes the order of a released Space.
2. An engine that cannot run here (CPU-only on a GPU, a package missing) falls back to `fp32`.
3. A cached entry of this engine for these exact weights and evidence (`store.engine_key`) is opened as it is;
   a rejected one falls back at once, with the reason it was rejected.
4. Otherwise the engine is built and checked once against fp32 on the evidence (`check`: a trained run's
   validation views, else probe clips); an int8 engine that misses keeps its most sensitive encoder blocks in
   fp32 until it passes (`mixed`). The verdict, its figures and the blocks kept fp32 are recorded in the cache
   entry, which the next start reads instead of checking again; a rejected engine falls back to `fp32`.
A named engine that falls back logs one warning line, `engine X cannot run this model (reason): using fp32`:
never a wrong answer. Under `auto` the line (logged as info: fp32 is then what `auto` means for this model)
names every engine tried; `auto` settles silently on a later candidate (`PreparedEngine.passed_over` says why
the earlier ones did not run).
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import vjepa_core.inference.engines.store as store
from vjepa_core.inference.engines.base import (
    AUTO,
    CPU,
    ENGINES,
    REFERENCE,
    SPACE,
    Engine,
    EngineUnfit,
    Int8Engine,
    Runner,
    auto_order,
    check_engine_name,
)
from vjepa_core.inference.engines.check import Agreement, Evidence, probe_evidence, show_step
from vjepa_core.inference.engines.eager import FP32
from vjepa_core.inference.engines.mixed import Plan, quantize_checked
from vjepa_core.inference.engines.parts import model_part
from vjepa_core.models.device import resolve_precision
from vjepa_core.models.layers import feature_layers
from vjepa_core.progress import progress_bar
from vjepa_core.store.atomic import exclusive, staged_dir

log = logging.getLogger(__name__)


def candidates(name: str, device: torch.device, precision: str = "auto", *, space: bool = False) -> tuple[str, ...]:
    """The engines `name` stands for on `device` (or in a Space), to try in order; unknown names are a
    `UserError`."""
    check_engine_name(name)
    if name != AUTO:
        return (name,)
    if space:
        return auto_order(SPACE)
    if device.type in ("cuda", "mps"):
        return (resolve_precision(precision, device),)  # the run's autocast: the eager engine of that name
    return auto_order(CPU)


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
    plan: Plan | None = None  # an int8 engine: the encoder blocks it keeps fp32
    key: str | None = None
    keep_alive: Any = field(default=None, repr=False)  # a temporary folder the runner still reads

    @property
    def needs_model(self) -> bool:
        """Whether the runner uses the torch model's weights (eager engines); if not, the caller may free them."""
        return ENGINES[self.engine].eager

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.run(pixels)


def prepare_engine(model: torch.nn.Module, *, part: str, engine: str = AUTO, device: torch.device,
                   precision: str = "auto", frames: int, crop: int, cache_root: Path | None = None,
                   model_name: str = "", max_bytes: int = store.MAX_BYTES, evidence: Evidence | None = None,
                   space: bool = False, progress: bool = True) -> PreparedEngine:
    """`model`'s `part` under `engine` (see the module docstring); `model` stays as it is. `evidence` defaults to
    probe clips (a bare model); `space` makes `auto` take a released Space's order. `progress`: building an
    engine that takes long (a large model's first start) shows its steps on stderr (`progress_bar`)."""
    start = time.perf_counter()
    module = model_part(model, part)
    evidence = evidence or probe_evidence(frames, crop)
    reasons = []
    for name in candidates(engine, device, precision, space=space):
        try:
            prepared = _prepare(ENGINES[name], module, part=part, device=device, frames=frames, crop=crop,
                                layers=feature_layers(model), cache_root=cache_root, model_name=model_name,
                                max_bytes=max_bytes, evidence=evidence, progress=progress)
            if reasons:
                log.info("engine auto: %s (%s)", name, "; ".join(reasons))
                prepared.passed_over = tuple(reasons)
            break
        except EngineUnfit as unfit:
            reasons.append(f"{name}: {unfit}" if engine == AUTO else str(unfit))
    else:  # `auto` settling on fp32 is what it promises (the fastest that keeps the answers); a named engine warns
        log.log(logging.INFO if engine == AUTO else logging.WARNING, "engine %s cannot run this model (%s): using fp32",
                engine, "; ".join(reasons))
        prepared = PreparedEngine(REFERENCE, engine, part, FP32.build(module, example_clips(frames, crop)),
                                  fallback="; ".join(reasons))
    prepared.requested, prepared.setup_s = engine, time.perf_counter() - start
    return prepared


def _prepare(engine: Engine, module: torch.nn.Module, *, part: str, device: torch.device, frames: int, crop: int,
             layers: tuple[int, ...], cache_root: Path | None, model_name: str, max_bytes: int,
             evidence: Evidence, progress: bool) -> PreparedEngine:
    example = example_clips(frames, crop)
    if engine.eager:  # the reference itself, or the run's autocast on a GPU: nothing to check or cache
        return PreparedEngine(engine.name, engine.name, part, engine.build(module, example))
    if engine.cpu_only and device.type != "cpu":
        raise EngineUnfit(f"it runs on the CPU only, this model is on {device.type}")
    missing = engine.missing()
    if missing:
        raise EngineUnfit(f"it needs {', '.join(missing)}: pip install {' '.join(missing)}")
    key = store.engine_key(engine=engine.name, part=part, module=module, feature_layers=layers, frames=frames,
                           crop=crop, evidence=evidence.identity)
    describe = {"key": key, "engine": engine.name, "part": part, "model": model_name, "frames": frames, "crop": crop,
                "evidence": evidence.source}
    if cache_root is None:
        return _uncached(engine, module, example, evidence, part=part, key=key, progress=progress)
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f"{key}.lock"):  # a second process preparing the same weights waits, then reads
        entry, built = store.read_entry(root, key), None
        cached = entry is not None
        if entry is None:
            entry, built = _build_entry(engine, module, example, evidence, root=root, describe=describe,
                                        progress=progress)
            store.trim(root, max_bytes, keep=key)
        store.touch(root, key)
    if entry["status"] != "ok":
        raise EngineUnfit(entry.get("reason") or "it was rejected before")
    check = Agreement(**entry["check"]) if entry.get("check") else None
    plan = _plan(entry.get("plan"))
    runner = (_opened_on_first_call(engine, root / key) if isinstance(engine, Int8Engine)
              else built or engine.build(module, example))
    return PreparedEngine(engine.name, engine.name, part, runner, cached=cached, check=check, plan=plan, key=key)


def _plan(recorded: dict[str, Any] | None) -> Plan | None:
    if recorded is None:
        return None
    return Plan(recorded["blocks"], tuple(recorded["fp32_blocks"]),
                {int(block): value for block, value in recorded["sensitivity"].items()}, tuple(recorded["tries"]))


def _opened_on_first_call(engine: Int8Engine, folder: Path) -> Runner:
    """A runner that opens the engine's files when first called: a caller that frees the torch model first
    (`PreparedEngine.needs_model` is False) never holds both in memory."""
    opened: list[Runner] = []

    def run(pixels: torch.Tensor) -> torch.Tensor:
        if not opened:
            opened.append(engine.open(folder))
        return opened[0](pixels)

    return run


def _build_checked(engine: Engine, module: torch.nn.Module, example: torch.Tensor, evidence: Evidence, *,
                   part: str, folder: Path | None, progress: bool) -> tuple[Runner | None, Agreement, Plan | None]:
    """The engine built (its files into `folder` when it is `cacheable`) and checked on `evidence`: (its runner, or
    None where it must be opened from `folder`; the check; the plan of an int8 engine). Raises `EngineUnfit`."""
    with progress_bar(desc=f"engine {engine.name}", unit="clips", enabled=progress) as bar:
        if isinstance(engine, Int8Engine):
            assert folder is not None
            check, plan = quantize_checked(engine, module, example, evidence, part=part, folder=folder, bar=bar)
            return None, check, plan
        show_step(bar, "build")
        runner = engine.build(module, example)
        return runner, evidence.check(part, module, runner, bar)[0], None


def _verdict(check: Agreement, plan: Plan | None) -> str | None:
    """None when the check passed, else why the engine is rejected (one line)."""
    if check.passed:
        return None
    kept = f" with {plan.describe()}" if plan is not None and plan.fp32_blocks else ""
    return f"answers differ from fp32's{kept}: {check.describe()}"


def _build_entry(engine: Engine, module: torch.nn.Module, example: torch.Tensor, evidence: Evidence, *,
                 root: Path, describe: dict[str, Any], progress: bool) -> tuple[dict[str, Any], Runner | None]:
    """Build and check the engine into `root/<key>`; a failure is recorded as a rejected entry (no files). Also
    the runner of an engine kept in memory only (it is not built twice)."""
    start = time.perf_counter()
    runner = None
    with staged_dir(root / describe["key"]) as folder:
        check = plan = None
        try:
            runner, check, plan = _build_checked(engine, module, example, evidence, part=describe["part"],
                                                 folder=folder, progress=progress)
            gc.collect()  # an exported model's session: freed before the entry is opened again from its place
            reason = _verdict(check, plan)
        except EngineUnfit as unfit:
            reason = str(unfit)
        if reason is not None:
            for item in folder.iterdir():  # a rejected entry keeps only its verdict
                item.unlink()
        entry = {**describe, "status": "ok" if reason is None else "rejected", "reason": reason,
                 "check": check.as_dict() if check else None, "plan": plan.as_dict() if plan else None,
                 "setup_s": round(time.perf_counter() - start, 2)}
        store.write_entry(folder, entry)
    return entry, runner if reason is None else None


def _uncached(engine: Engine, module: torch.nn.Module, example: torch.Tensor, evidence: Evidence, *, part: str,
              key: str, progress: bool) -> PreparedEngine:
    folder = tempfile.TemporaryDirectory(prefix="vjepa-engine-") if isinstance(engine, Int8Engine) else None
    runner, check, plan = _build_checked(engine, module, example, evidence, part=part,
                                         folder=Path(folder.name) if folder else None, progress=progress)
    reason = _verdict(check, plan)
    if reason is not None:
        raise EngineUnfit(reason)
    if runner is None:
        assert isinstance(engine, Int8Engine) and folder is not None
        runner = engine.open(Path(folder.name))
    return PreparedEngine(engine.name, engine.name, part, runner, check=check, plan=plan, key=key,
                          keep_alive=folder)


def example_clips(frames: int, crop: int) -> torch.Tensor:
    """What engines are exported with: two clips' worth of zeros [2, frames, 3, crop, crop] (batch axis dynamic)."""
    return torch.zeros(2, frames, 3, crop, crop)
