"""`runner bench`: the naive loop vs the cached matrix, with the measured lower bound; or (`--sweep`) a
probe sweep's runs one at a time vs side by side on one pass of the cached tokens; or (`--inference`) the
inference engines against fp32 eager (`runner.bench.inference`).

The measuring code is `runner.bench.matrix` and `runner.bench.joint` (workloads of this command, so they
ship with it; the `benchmarks/` folder of a checkout holds the figures that need a harness); this command
parses flags and renders their dicts.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from runner.app import app
from runner.bench.inference import DEFAULT_ENGINES, bench_inference
from runner.options import fail, stdout_console, user_errors
from vjepa_core.paths import WAREHOUSE_ENV
from vjepa_core.strategies import STRATEGIES

FROZEN_ENCODER = tuple(name for name, strategy in STRATEGIES.items() if strategy.frozen_encoder)


@app.command()
@user_errors
def bench(
    sweep: bool = typer.Option(False, "--sweep", help="Time the official probe sweep instead (pooler_head, lr x "
                               "weight decay, no warmup, feature layers): its runs one at a time vs side by side "
                               "on one pass of the cached tokens (run-matrix/sweep --joint), on one warm cache."),
    runs: int = typer.Option(20, help="--sweep: how many points of the 5 x 4 lr x weight-decay grid."),
    feature_layers: str = typer.Option("-7,-5,-3,-1", help="--sweep: encoder blocks feeding the pooler "
                                       "(ViT-L's 17,19,21,23 counted from the end)."),
    epochs: int | None = typer.Option(None, show_default="5; 2 with --sweep", help="Epochs our arm trains "
                                      "(measured)."),
    naive_epochs: int | None = typer.Option(None, help="Epochs the naive arm trains (default: --epochs); "
                                            "fewer saves time, the rest is extrapolated per epoch."),
    model: str | None = typer.Option(None, show_default="small; tiny-jepa with --inference",
                                     help="Model preset, save_pretrained folder or hub id."),
    classes: int = typer.Option(6, help="Synthetic classes (2-6)."),
    train_per_class: int | None = typer.Option(None, show_default="6; 4 with --sweep",
                                               help="Training videos per class."),
    eval_per_class: int = typer.Option(2, help="Validation videos per class (and as many test videos)."),
    train_views: int | None = typer.Option(None, show_default="4; 2 with --sweep",
                                           help="Cached augmented views per training video."),
    frames_per_clip: int | None = typer.Option(None, show_default="16; 8 with --sweep", help="Frames per clip."),
    workers: int | None = typer.Option(None, "--workers", help="Decode workers (default: half the CPUs, 1-4)."),
    strategies: str = typer.Option(",".join(FROZEN_ENCODER), help="Comma-separated frozen-encoder strategies."),
    inference: bool = typer.Option(False, "--inference", help="Time inference engines instead: per-clip time of "
                                   "each --engines against fp32 eager in one process, their answers against "
                                   "fp32's, peak RSS, setup cost, effective GFLOP/s and this machine's GEMM rates."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="--inference: a trained checkpoint's "
                                           "classifier (results/checkpoints/<run_id>, or a folder runner release "
                                           "wrote) instead of --model."),
    engines: str = typer.Option(DEFAULT_ENGINES, help="--inference: engines to compare, comma-separated (fp32, "
                                "the reference, always runs; auto: what runner predict uses by default)."),
    batches: str = typer.Option("1,4", help="--inference: clips per call to time, comma-separated."),
    rounds: int = typer.Option(5, help="--inference: timed rounds (each calls every engine once; median)."),
    clips: int = typer.Option(8, help="--inference: synthetic clips every engine classifies for its agreement "
                              "with fp32."),
    peak_rss: bool = typer.Option(True, "--peak-rss/--no-peak-rss", help="--inference: measure each engine's peak "
                                  "RSS in a process of its own (a few seconds per engine for a small model)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="--inference: no progress lines on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    work_dir: Path | None = typer.Option(None, help="Keep data, caches and checkpoints here (default: a "
                                         "temporary folder, deleted after)."),
    warehouse: Path | None = typer.Option(None, "--warehouse", envvar=WAREHOUSE_ENV, help="--inference --checkpoint: "
                                          "the warehouse whose validation videos of the run the engines are checked "
                                          "on, as runner predict checks them (else probe clips)."),
) -> None:
    """Time the frozen-backbone matrix two ways (naive: encoder every step, batch 1, fp32; ours: shared cache).

    Prints both wall times, the speed-up for the measured epochs, 5 and 20, our time over the measured
    lower bound, decode vs encoder throughput and peak memory.

    With --sweep: the probe sweep one run at a time vs side by side, both wall times and their ratio
    (measured in one run), and that both arms agree.

    With --inference: inference engines (runner predict --engine) against fp32 eager on one model.
    Example: runner bench --inference --model /path/to/save_pretrained --engines fp32,auto --batches 1
    """
    from runner.bench.matrix import Workload, run_bench
    from vjepa_core.training.features import default_workers

    if inference:
        bench_inference(model=model, checkpoint=checkpoint, engines=engines, batches=batches, rounds=rounds,
                        clips=clips, frames=frames_per_clip, peak_rss=peak_rss, as_json=as_json, quiet=quiet,
                        warehouse=warehouse)
        return
    model = model or "small"
    sizes = dict(epochs=epochs, train_per_class=train_per_class, train_views=train_views,
                 frames_per_clip=frames_per_clip)
    if sweep:
        _bench_sweep(runs, feature_layers, model, classes, eval_per_class, workers, as_json, work_dir,
                     **{k: v for k, v in sizes.items() if v is not None})
        return
    epochs, train_per_class, train_views, frames_per_clip = (
        5 if epochs is None else epochs, 6 if train_per_class is None else train_per_class,
        4 if train_views is None else train_views, 16 if frames_per_clip is None else frames_per_clip)

    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    bad = [s for s in names if s not in STRATEGIES or not STRATEGIES[s].frozen_encoder]
    if bad or not names:
        fail(f"--strategies takes frozen-encoder strategies ({', '.join(FROZEN_ENCODER)}), got {bad}")
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


def _bench_sweep(runs: int, feature_layers: str, model: str, classes: int, eval_per_class: int,
                 workers: int | None, as_json: bool, work_dir: Path | None, **sizes: int) -> None:
    from runner.bench.joint import LRS, WEIGHT_DECAYS, SweepWorkload, run_sweep_bench
    from vjepa_core.spec import RunSpec

    if not 1 <= runs <= len(LRS) * len(WEIGHT_DECAYS):
        fail(f"--runs must be 1-{len(LRS) * len(WEIGHT_DECAYS)} (the lr x weight-decay grid), got {runs}")
    if not 2 <= classes <= 6 or min([eval_per_class, *sizes.values()]) < 1:
        fail("bench needs 2-6 classes and epochs, train/eval videos per class, views and frames of at least 1")
    layers = RunSpec.from_dict({"feature_layers": feature_layers}).feature_layers  # a UserError names the flag
    workload = SweepWorkload(model=model, runs=runs, classes=classes, eval_per_class=eval_per_class,
                             feature_layers=layers, workers=1 if workers is None else workers, **sizes)
    with tempfile.TemporaryDirectory(prefix="vjepa-bench-") as tmp:
        result = run_sweep_bench(workload, work_dir or Path(tmp), progress=False)
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    table = Table(title=f"probe sweep: {result['runs']} runs, {workload.epochs} epochs, {model}, "
                        f"feature layers {list(layers)}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("one at a time / side by side (measured)", f"{result['separate_seconds']:.1f} s / "
                  f"{result['joint_seconds']:.1f} s = {result['ratio']:.2f}x")
    for arm in ("separate", "joint"):
        table.add_row(f"  {arm}: fixed part + epochs", f"{result[f'{arm}_fixed_seconds']:.1f} + "
                      f"{result[f'{arm}_epoch_seconds']:.1f} s")
    table.add_row("at 20 epochs (fixed + 20 x measured mean epoch)", f"{result['ratio_20_epochs']:.2f}x")
    table.add_row("same run ids; largest train-loss difference", f"{result['same_run_ids']}; "
                  f"{result['max_train_loss_difference']:.2g}")
    table.add_row("load average before / after (CPUs)", f"{result['load_average_before']:.1f} / "
                  f"{result['load_average_after']:.1f} ({result['cpus']})")
    stdout_console().print(table)
