"""Measure inference engines side by side: the figures behind `runner bench --inference`.

In:  a `ModelSource` (a model name or folder, or a checkpoint), the engines to compare, batch sizes, clips.
Out: `bench_engines(...)` -> `InferenceBench`: one `EngineFigures` per engine and batch size
     (ms per clip, speedup vs fp32 measured in the same run, max |probability difference| and top-1
     agreement vs fp32 on the same clips, peak RSS, one-off setup seconds, whether the prepared engine is
     cached on disk, effective GFLOP/s), plus this machine's measured GEMM rates and the load around it.

How it measures, on a machine other jobs may share:
- Every engine is prepared cold (an empty engine cache), timed: that is its one-off cost (export,
  quantization, the check against fp32).
- Timing is round-robin in one process: each round calls every engine once on the same batch, after one
  warm-up call each; an engine's figure is its median round. A burst of load from elsewhere then hits
  every engine alike, and ratios stay fair when absolute times do not.
- Peak RSS is measured per engine in a child process of its own (`multiprocessing`, spawn): it loads the
  model, opens the engine from the cache the parent filled, runs one batch of the largest size and reports
  the kernel's high-water
  mark (`VmHWM`). In one process the mark only grows, so a per-engine figure needs a process per engine;
  each child is what a `runner predict --engine E` process holds.
- FLOPs per clip are counted by `torch.utils.flop_counter.FlopCounterMode` on the fp32 forward (CPU attention
  included); effective GFLOP/s = FLOPs per clip / seconds per clip, next to the machine's fp32 GEMM GFLOP/s
  and int8 GEMM GOP/s timed here on a matrix product of ViT-L's MLP shape.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from vjepa_core.inference.engines import ENGINES, REFERENCE, EngineUnfit
from vjepa_core.inference.engines.base import Int8Engine
from vjepa_core.inference.engines.check import Evidence, probe_evidence, run_batched, synthetic_clips
from vjepa_core.inference.engines.parts import model_part
from vjepa_core.inference.engines.prepare import PreparedEngine, example_clips, prepare_engine
from vjepa_core.progress import progress_bar

GEMM_SHAPE = (2048, 1024, 4096)  # tokens x width x MLP width of a ViT-L clip: the shape that dominates it


@dataclass(frozen=True)
class ModelSource:
    """How a process (the bench's children included) gets the model: `load()` -> a classifier, eval mode."""

    model: str | None = None  # a preset, save_pretrained folder or hub id, with `labels` fresh classes
    checkpoint: str | None = None  # or a vjepa-lab checkpoint folder, or a folder `runner release` wrote
    labels: int = 6

    def load(self) -> torch.nn.Module:
        if self.checkpoint is not None:
            from vjepa_core.release.reading import open_checkpoint

            return open_checkpoint(Path(self.checkpoint)).model.eval()
        from vjepa_core.models import load_model

        return load_model(str(self.model), [f"class_{i}" for i in range(self.labels)]).eval()

    def describe(self) -> str:
        return f"checkpoint {self.checkpoint}" if self.checkpoint else f"model {self.model}"


@dataclass
class EngineFigures:
    engine: str  # the engine that ran (a fallback shows as fp32 with `fallback` set)
    requested: str  # what was asked for (`auto` names the engine it settled on in `engine`)
    batch: int
    ms_per_clip: float
    speedup: float
    max_prob_diff: float
    top1_agreement: float
    setup_s: float
    cacheable: bool
    effective_gflops: float
    peak_rss_mb: float | None = None
    fallback: str | None = None
    rejected: str | None = None  # timed whole-model int8 although the check rejects it (`auto` passes it over)
    check: dict[str, Any] | None = None  # the check of the engine that runs (`check.Agreement`)
    fp32_blocks: list[int] | None = None  # an int8 engine: the encoder blocks it keeps fp32, of `blocks`
    blocks: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InferenceBench:
    source: str
    frames: int
    crop: int
    flops_per_clip: float
    gemm_gflops_fp32: float
    gemm_gops_int8: float
    int8_gemm_kernel: str
    threads: int
    engines: list[EngineFigures] = field(default_factory=list)
    load_average: dict[str, list[float]] = field(default_factory=dict)
    cpu: str = ""  # `cpu_description()`: the int8 gain depends on it

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "engines"},
                "engines": [figures.as_dict() for figures in self.engines]}


# The instruction sets int8 and bf16 matrix products are fast or slow by (Linux's /proc/cpuinfo names).
MATMUL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_description() -> str:
    """The CPU's model name and which of `MATMUL_FLAGS` it has, e.g. `AMD EPYC 9R14 (avx2, fma, avx512_vnni)`."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    name = fields.get("model name") or platform.processor() or platform.machine()
    present = [flag for flag in MATMUL_FLAGS if flag in flags]
    return f"{name} ({', '.join(present) if present else 'none of ' + '/'.join(MATMUL_FLAGS)})"


def gemm_rates(shape: tuple[int, int, int] = GEMM_SHAPE, *, seconds: float = 2.0) -> tuple[float, float, str]:
    """(fp32 GFLOP/s, int8 GOP/s, int8 kernel) of an [M, K] x [K, N] product timed on this machine.

    fp32 is torch's matmul (the eager path's kernel). int8 is ONNX Runtime's `MatMulInteger` (u8 x s8, its
    AVX2/VNNI kernels: the hardware's int8 rate, with one scale per matrix; `ort-int8`'s `MatMulNBits` adds a
    scale per block of 128) when installed, else fbgemm's dynamic quantized linear."""
    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)
    fp32 = 2 * m * k * n / _seconds_per_call(lambda: a @ b, seconds) / 1e9
    try:
        call, kernel = _ort_int8_matmul(m, k, n), "onnxruntime MatMulInteger"
    except ImportError:
        call, kernel = _fbgemm_int8_linear(a, k, n), "fbgemm quantized linear"
    return fp32, 2 * m * k * n / _seconds_per_call(call, seconds) / 1e9, kernel


def _ort_int8_matmul(m: int, k: int, n: int) -> Callable[[], Any]:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
              helper.make_tensor_value_info("b", TensorProto.INT8, [k, n])]
    output = helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "gemm", inputs, [output])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 256, (m, k), dtype=np.uint8), "b": rng.integers(-128, 128, (k, n), dtype=np.int8)}
    return lambda: session.run(None, feed)


def _fbgemm_int8_linear(a: torch.Tensor, k: int, n: int) -> Callable[[], Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(k, n, bias=False)),
                                                        {torch.nn.Linear}, dtype=torch.qint8)
    return lambda: linear(a)


def _seconds_per_call(call: Callable[[], Any], budget: float) -> float:
    """Median seconds of `call` over repeats filling about `budget` seconds, after one warm-up call."""
    call()
    times: list[float] = []
    while sum(times) < budget or len(times) < 3:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops_per_clip(part: torch.nn.Module, clip: torch.Tensor) -> float:
    """FLOPs of one forward of `part` on one clip [1, T, 3, crop, crop] (matmuls, convolutions, attention)."""
    def cpu_attention(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        part(clip[:1])
    return float(counter.get_total_flops())


def bench_engines(source: ModelSource, *, engines: Sequence[str], batches: Sequence[int] = (1, 4), rounds: int = 5,
                  frames: int = 16, clips: torch.Tensor | None = None, clip_count: int = 8, peak_rss: bool = True,
                  evidence: Evidence | None = None, say: Callable[[str], None] = lambda line: None,
                  progress: bool = False) -> InferenceBench:
    """Every engine in `engines` ("fp32" first: the reference) on the classifier of `source`; see the module doc.

    `clips` [C, T, 3, crop, crop] are the inputs (timed on the first `batch` of them, agreement on all of them);
    by default `clip_count` synthetic clips (at least `max(batches)`). `evidence` is what the engines are checked on
    (default: probe clips). A named int8 engine its check rejects is timed all the same, whole-model int8, and
    marked so. `say` receives one line per step; `progress` shows long steps as they go (`progress_bar`)."""
    names = list(dict.fromkeys([REFERENCE, *engines]))
    loads = {"before": list(os.getloadavg())}
    model = source.load()
    crop = model.config.crop_size
    part = model_part(model, "classifier")
    if clips is None:
        clips = synthetic_clips(frames, crop, count=max(clip_count, *batches), seed=1)
    say(f"{source.describe()}: {len(clips)} clips of {frames} x {crop}^2, engines {', '.join(names)}")
    fp32_rate, int8_rate, kernel = gemm_rates()
    flops = flops_per_clip(part, clips)
    evidence = evidence or probe_evidence(frames, crop)
    with progress_bar(desc="fp32 reference", unit="clips", enabled=progress) as bar:
        evidence.reference("classifier", part, bar)  # fp32 on the evidence, once, before any engine's setup is timed
    workdir = tempfile.TemporaryDirectory(prefix="vjepa-bench-engines-")
    cache = Path(workdir.name) / "engines"
    timed: dict[str, Timed] = {}
    for name in names:
        prepared = prepare_engine(model, part="classifier", engine=name, device=torch.device("cpu"), frames=frames,
                                  crop=crop, cache_root=cache, evidence=evidence, progress=progress)
        timed[name] = _timed(name, prepared, part, cache=cache, own=Path(workdir.name) / name, frames=frames,
                             crop=crop)
        label = name if prepared.engine == name else f"{name} ({prepared.engine})"
        say(f"{label}: prepared in {prepared.setup_s:.1f} s" + (" (from the cache)" if prepared.cached else "")
            + _note(timed[name]))
    outputs = {name: run_batched(entry.run, clips, max(batches)) for name, entry in timed.items()}
    bench = InferenceBench(source.describe(), frames, crop, flops, fp32_rate, int8_rate, kernel,
                           torch.get_num_threads(), cpu=cpu_description())
    for batch in batches:
        times = _round_robin({name: entry.run for name, entry in timed.items()}, clips[:batch], rounds)
        for name in names:
            ms, entry = 1000 * times[name] / batch, timed[name]
            diff, top1 = _agreement(outputs[REFERENCE], outputs[name])
            bench.engines.append(EngineFigures(
                entry.engine, name, batch, ms, times[REFERENCE] / times[name], diff, top1, entry.prepared.setup_s,
                ENGINES[entry.engine].cacheable, flops / (ms / 1000) / 1e9, fallback=entry.prepared.fallback,
                rejected=entry.rejected, check=entry.prepared.check.as_dict() if entry.prepared.check else None,
                fp32_blocks=list(entry.prepared.plan.fp32_blocks) if entry.prepared.plan else None,
                blocks=entry.prepared.plan.blocks if entry.prepared.plan else None))
            say(f"batch {batch}: {name} {ms:.1f} ms/clip, {times[REFERENCE] / times[name]:.2f}x fp32")
    if peak_rss:  # one child per engine, at the largest batch: the figure of every row of that engine
        for name, entry in timed.items():
            peak = child_peak_rss(source, entry.engine, folder=entry.folder, frames=frames, batch=max(batches))
            for figures in bench.engines:
                if figures.requested == name:
                    figures.peak_rss_mb = peak
            say(f"{name}: peak RSS {peak:.0f} MiB (own process, batch {max(batches)})")
    workdir.cleanup()
    loads["after"] = list(os.getloadavg())
    bench.load_average = loads
    return bench


@dataclass
class Timed:
    """One engine of the bench: what runs (`engine`, `run`), its files (`folder`, None for eager engines), and
    why the check rejects it when it is timed all the same."""

    prepared: PreparedEngine
    engine: str
    run: Callable[[torch.Tensor], torch.Tensor]
    folder: Path | None = None
    rejected: str | None = None


def _timed(name: str, prepared: PreparedEngine, part: torch.nn.Module, *, cache: Path, own: Path, frames: int,
           crop: int) -> Timed:
    """What the bench times for `name`: the prepared engine, or (a named int8 engine its check rejects) the whole
    model in int8, exported into `own`."""
    engine = ENGINES.get(name)
    if prepared.fallback is None or not isinstance(engine, Int8Engine) or engine.missing():
        folder = cache / prepared.key if prepared.key is not None else None
        return Timed(prepared, prepared.engine, prepared, folder)
    own.mkdir()
    try:
        engine.export(part, example_clips(frames, crop), own)
    except EngineUnfit:  # it does not even build: fp32 is what runs
        return Timed(prepared, prepared.engine, prepared)
    return Timed(prepared, name, engine.open(own), own, rejected=prepared.fallback)


def _note(entry: Timed) -> str:
    if entry.rejected:
        return f" (timed whole-model int8, though the check rejects it: {entry.rejected})"
    if entry.prepared.fallback:
        return f" (fell back to fp32: {entry.prepared.fallback})"
    plan = entry.prepared.plan
    return f" ({plan.describe()})" if plan is not None else ""


def _round_robin(runners: dict[str, Callable[[torch.Tensor], torch.Tensor]], batch: torch.Tensor, rounds: int
                 ) -> dict[str, float]:
    """Median seconds per call of each runner on `batch`: one warm-up call each, then `rounds` rounds in turn."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for runner in runners.values():
        runner(batch)
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner(batch)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _agreement(reference: torch.Tensor, logits: torch.Tensor) -> tuple[float, float]:
    """(max |probability difference|, share of clips with the same top-1) of `logits` against `reference`."""
    ref, other = torch.softmax(reference.float(), -1), torch.softmax(logits.float(), -1)
    return float((ref - other).abs().max()), float((ref.argmax(-1) == other.argmax(-1)).float().mean())


def child_peak_rss(source: ModelSource, engine: str, *, folder: Path | None, frames: int, batch: int) -> float:
    """MiB: the peak RSS of a fresh process that loads `source`, opens `engine` (from its files in `folder`, freeing
    the torch model first as a `Predictor` does; an eager engine runs the model) and classifies `batch` clips."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_peak_rss_of_one_batch, (source, engine, str(folder) if folder else None, frames, batch,
                                                   torch.get_num_threads()))


def _peak_rss_of_one_batch(source: ModelSource, engine: str, folder: str | None, frames: int, batch: int,
                           threads: int) -> float:
    import gc

    torch.set_num_threads(threads)
    model = source.load()
    crop = model.config.crop_size
    if folder is None:
        run = ENGINES[engine].build(model_part(model, "classifier"), example_clips(frames, crop))
    else:  # an exported engine runs without the torch weights
        del model
        gc.collect()
        run = ENGINES[engine].open(Path(folder))
    run(synthetic_clips(frames, crop, count=batch, seed=1))
    return own_peak_rss() / 2**20


def own_peak_rss() -> int:
    """Bytes: this process's peak RSS since it started its program. Linux's VmHWM, which starts afresh at exec;
    `ru_maxrss` does not (a spawned child would report the parent's size at fork). Elsewhere `ru_maxrss`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
