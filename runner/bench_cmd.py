"""`runner bench`: the naive loop vs the cached matrix, with the measured lower bound.

The measuring code is `benchmarks.bench_matrix`; these commands parse flags and render its dict.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from runner.app import app
from runner.options import fail, stdout_console, user_errors


@app.command()
@user_errors
def bench(
    epochs: int = typer.Option(5, help="Epochs our arm trains (measured)."),
    naive_epochs: int | None = typer.Option(None, help="Epochs the naive arm trains (default: --epochs); "
                                            "fewer saves time, the rest is extrapolated per epoch."),
    model: str = typer.Option("small", help="Model preset or path."),
    classes: int = typer.Option(6, help="Synthetic classes (2-6)."),
    train_per_class: int = typer.Option(6, help="Training videos per class."),
    eval_per_class: int = typer.Option(2, help="Validation videos per class (and as many test videos)."),
    train_views: int = typer.Option(4, help="Cached augmented views per training video."),
    frames_per_clip: int = typer.Option(16, help="Frames per clip."),
    workers: int | None = typer.Option(None, "--workers", help="Decode workers (default: half the CPUs, 1-4)."),
    strategies: str = typer.Option("head,pooler_head,lora,pooler_head_lora", help="Comma-separated strategies."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    work_dir: Path | None = typer.Option(None, help="Keep data, caches and checkpoints here (default: a "
                                         "temporary folder, deleted after)."),
) -> None:
    """Time the frozen-backbone matrix two ways (naive: encoder every step, batch 1, fp32; ours: shared cache).

    Prints both wall times, the speed-up for the measured epochs, 5 and 20, our time over the measured
    lower bound, decode vs encoder throughput and peak memory.
    """
    from benchmarks.bench_matrix import Workload, run_bench
    from vjepa_core.strategies import STRATEGIES
    from vjepa_core.training.features import default_workers

    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    bad = [s for s in names if s not in STRATEGIES or not STRATEGIES[s].frozen_encoder]
    if bad or not names:
        fail(f"--strategies takes frozen-encoder strategies (head, pooler_head, lora, pooler_head_lora), got {bad}")
    if not 2 <= classes <= 6 or min(epochs, train_per_class, eval_per_class, train_views, frames_per_clip) < 1:
        fail("bench needs 2-6 classes and epochs, train/eval videos per class, views and frames of at least 1")
    if naive_epochs is not None and naive_epochs < 1:
        fail("--naive-epochs must be at least 1")
    workload = Workload(model=model, strategies=names, classes=classes, train_per_class=train_per_class,
                        eval_per_class=eval_per_class, epochs=epochs, naive_epochs=naive_epochs,
                        train_views=train_views, frames_per_clip=frames_per_clip,
                        workers=default_workers() if workers is None else workers)
    with tempfile.TemporaryDirectory(prefix="vjepa-bench-") as tmp:
        result = run_bench(workload, work_dir or Path(tmp), progress=False)
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    print_bench(result)


def print_bench(result: dict[str, Any]) -> None:
    out = stdout_console()
    runs = Table(title="time split per run (seconds, measured)")
    for column in ("arm", "strategy", "wall", "decode", "encode", "fit", "eval", "encoded clips"):
        runs.add_column(column, justify="right")
    for arm in ("naive", "ours"):
        for run in result[f"{arm}_runs"]:
            runs.add_row(arm, run["strategy"], *[f"{run[k] or 0:.1f}" for k in
                         ("train_seconds", "decode_seconds", "encode_seconds", "fit_seconds", "eval_seconds")],
                         str(run["encoded_clips"] if run["encoded_clips"] is not None else "every step"))
    out.print(runs)
    summary = Table(title="matrix of frozen-backbone strategies")
    summary.add_column("")
    summary.add_column("value", justify="right")
    for epochs in sorted(int(k.split("_")[1]) for k in result if k.startswith("speedup_")):
        note = " (extrapolated)" if any(result["extrapolated"][f"{epochs}_epochs"].values()) else ""
        naive, ours = result[f"naive_seconds_{epochs}_epochs"], result[f"ours_seconds_{epochs}_epochs"]
        summary.add_row(f"{epochs} epochs: naive / ours{note}",
                        f"{naive:.1f} s / {ours:.1f} s = {result[f'speedup_{epochs}_epochs']:.2f}x")
    summary.add_row("ours / lower bound", f"{result['ours_wall_seconds']:.1f} s / {result['lower_bound_seconds']:.1f} s"
                    f" = {result['wall_over_bound']:.2f}x")
    summary.add_row("  bound = encoder + pooler + trainable", f"{result['bound_encode_seconds']:.1f} + "
                    f"{result['bound_pool_seconds']:.1f} + {result['bound_trainable_seconds']:.1f} s")
    summary.add_row("decode clips/s (with workers)", f"{result['decode_clips_per_s']:.1f}")
    summary.add_row("encoder clips/s (batched)", f"{result['encoder_clips_per_s']:.1f}")
    summary.add_row("peak memory (RSS)", f"{result['peak_memory_bytes'] / 2**20:.0f} MiB")
    out.print(summary)
