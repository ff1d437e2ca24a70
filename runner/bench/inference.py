"""`runner bench --inference`: every inference engine against fp32 eager, side by side in one process.

The measuring code is `runner.bench.engines`; this module picks the model (a preset, a
save_pretrained folder, or a trained checkpoint's classifier), checks the flags and renders the figures as a
table or one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from runner.options import stdout_console
from vjepa_core.errors import UserError, did_you_mean
from vjepa_core.inference.engines import AUTO, CPU, REFERENCE, auto_order, engine_names

DEFAULT_MODEL = "tiny-jepa"
DEFAULT_ENGINES = ",".join([REFERENCE, AUTO, *auto_order(CPU)])  # the reference, auto, and each of its choices


def bench_inference(*, model: str | None, checkpoint: Path | None, engines: str, batches: str, rounds: int,
                    clips: int, frames: int | None, peak_rss: bool, as_json: bool, quiet: bool,
                    warehouse: Path | None = None) -> None:
    from runner.bench.engines import ModelSource, bench_engines

    names = _names(engines, engine_names())
    sizes = _batches(batches)
    if rounds < 1 or clips < 1:
        raise UserError(f"--rounds and --clips must be at least 1, got {rounds} and {clips}")
    if checkpoint is not None and model is not None:
        raise UserError("choose one of --model and --checkpoint")
    source = ModelSource(checkpoint=str(checkpoint)) if checkpoint else ModelSource(model=model or DEFAULT_MODEL)
    frames = frames or _checkpoint_frames(checkpoint) or 16
    say = (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))
    bench = bench_engines(source, engines=names, batches=sizes, rounds=rounds, frames=frames,
                          clip_count=max(clips, *sizes), peak_rss=peak_rss, say=say,
                          evidence=_run_evidence(checkpoint, warehouse), progress=not quiet)
    if as_json:
        typer.echo(json.dumps(bench.as_dict()))
        return
    print_inference_bench(bench.as_dict())


def _names(engines: str, known: list[str]) -> list[str]:
    names = [name.strip() for name in engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UserError(f"--engines: unknown {', '.join(unknown) or 'nothing given'} (choose from {', '.join(known)})"
                        f"{did_you_mean(unknown, known)}")
    return names


def _batches(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise UserError(f"--batches takes batch sizes of at least 1, comma-separated (e.g. 1,4), got {text!r}")
    return sizes


def _run_evidence(checkpoint: Path | None, warehouse: Path | None) -> Any:
    """A checkpoint's engines are checked on its run's validation views, as `runner predict` checks them."""
    if checkpoint is None:
        return None
    from vjepa_core.inference.views import validation_evidence
    from vjepa_core.paths import warehouse_path
    from vjepa_core.release.reading import checkpoint_manifest

    manifest = checkpoint_manifest(checkpoint)
    return validation_evidence(manifest["run_id"], warehouse_path(warehouse), manifest["preprocessing"])


def _checkpoint_frames(checkpoint: Path | None) -> int | None:
    if checkpoint is None:
        return None
    from vjepa_core.release.reading import checkpoint_manifest

    return int(checkpoint_manifest(checkpoint)["preprocessing"]["frames_per_clip"])


def print_inference_bench(result: dict[str, Any]) -> None:
    from vjepa_core.inference.engines.check import Agreement

    table = Table(title=f"inference engines on {result['source']}: {result['frames']} frames x {result['crop']}^2, "
                        f"{result['threads']} threads, {result['flops_per_clip'] / 1e9:.1f} GFLOP per clip")
    for column in ("engine", "batch", "ms/clip", "vs fp32", "max |dp|", "top-1 same", "fp32 blocks", "peak RSS MiB",
                   "setup s", "cached on disk", "GFLOP/s"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for row in result["engines"]:
        name = row["requested"] if row["requested"] == row["engine"] else f"{row['requested']} -> {row['engine']}"
        rss = "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.0f}"
        kept = "-" if row["blocks"] is None else f"{len(row['fp32_blocks'])}/{row['blocks']}"
        table.add_row(name, str(row["batch"]), f"{row['ms_per_clip']:.1f}", f"{row['speedup']:.2f}x",
                      f"{row['max_prob_diff']:.4f}", f"{row['top1_agreement']:.0%}", kept, rss,
                      f"{row['setup_s']:.1f}", "yes" if row["cacheable"] else "no", f"{row['effective_gflops']:.1f}")
    out = stdout_console()
    out.print(table)
    loads = result["load_average"]
    out.print(f"this machine: {result['cpu']}, fp32 GEMM {result['gemm_gflops_fp32']:.1f} GFLOP/s (torch), int8 GEMM "
              f"{result['gemm_gops_int8']:.1f} GOP/s ({result['int8_gemm_kernel']}); load average "
              f"{loads['before'][0]:.1f} before, {loads['after'][0]:.1f} after")
    notes = {}  # one line per engine, not per batch
    for row in result["engines"]:
        if row["check"] and not row["rejected"]:
            notes[row["requested"]] = f"({row['engine']}) kept fp32's answers: {Agreement(**row['check']).describe()}"
        if row["rejected"]:
            notes[row["requested"]] = f"is timed, but the check rejects it (auto would not run it): {row['rejected']}"
        elif row["fallback"]:
            notes[row["requested"]] = f"fell back to fp32: {row['fallback']}"
    for name, note in notes.items():
        out.print(f"{name} {note}")
