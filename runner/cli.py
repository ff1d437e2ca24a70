"""`runner`: run V-JEPA 2 fine-tuning experiments and keep every result in a DuckDB warehouse.

Every command explains itself with --help; bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import json
import logging
import numbers
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from runner.options import (
    ResultsOption,
    WarehouseOption,
    build_spec,
    fail,
    progress_enabled,
    results_path,
    stdout_console,
    user_errors,
    warehouse_path,
    with_spec_options,
)
from vjepa_core.errors import UserError
from vjepa_core.spec import ExecOptions, RunSpec

if TYPE_CHECKING:
    from vjepa_core.stats import ChanceTest

app = typer.Typer(
    name="runner", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Fine-tune V-JEPA 2 on your videos: single runs, strategy x data-size x frames matrices and "
         "sweeps, all recorded in a DuckDB warehouse.",
)
console = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="YAML file of run options (flags override it).")
DeviceOption = typer.Option("auto", help="auto (CUDA > MPS > CPU), cpu, cuda, cuda:N or mps.")
DecoderOption = typer.Option("auto", help="Video decoder: auto (decord, else PyAV), decord or pyav.")
WorkersOption = typer.Option(None, "--workers", show_default="half the CPUs, 1-4",
                             help="DataLoader worker processes for decoding (0 = decode in the main process).")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def exec_options(device: str, decoder: str, workers: int | None, quiet: bool, *, cache: bool = True,
                 matrix_id: str | None = None) -> ExecOptions:
    from vjepa_core.features import default_workers

    workers = default_workers() if workers is None else workers
    return ExecOptions(device=device, decoder=decoder, num_workers=workers, cache=cache,
                       progress=progress_enabled(quiet), matrix_id=matrix_id)


@app.command()
@user_errors
@with_spec_options
def run(
    config: Path | None = ConfigOption,
    force: bool = typer.Option(False, "--force", help="Run again even if this exact spec already succeeded."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run the frozen encoder every step (slow; "
                                  "for checking the cache)."),
    device: str = DeviceOption,
    decoder: str = DecoderOption,
    workers: int | None = WorkersOption,
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    quiet: bool = QuietOption,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Run one experiment (defaults <- --config YAML <- flags) and record it in the warehouse.

    Example: runner run --data synthetic --strategy lora --model tiny --epochs 2
    """
    from runner.execute import execute_one
    from vjepa_core.warehouse import Warehouse

    spec = build_spec(config, overrides or {})
    options = exec_options(device, decoder, workers, quiet, cache=not no_cache)
    record = execute_one(spec, results_path(results), warehouse_path(warehouse), options, force=force)
    print_run_summary(record, chance_of(Warehouse(warehouse_path(warehouse)), record))
    if record["status"] != "success":
        raise typer.Exit(1)


@app.command("list")
@user_errors
def list_runs(
    strategy: str | None = typer.Option(None, help="Only this strategy."),
    status: str | None = typer.Option(None, help="Only runs with this status (success, failed)."),
    matrix: str | None = typer.Option(None, help="Only runs of this matrix id."),
    limit: int = typer.Option(50, help="Show at most this many runs (newest first)."),
    warehouse: Path | None = WarehouseOption,
) -> None:
    """List runs, newest first."""
    from vjepa_core.warehouse import Warehouse

    runs = Warehouse(existing_warehouse(warehouse)).runs(strategy=strategy, status=status, matrix_id=matrix)
    if runs.empty:
        console.print("no runs yet: try `runner run --data synthetic --model tiny`")
        return
    table = Table(title=f"{len(runs)} run(s)")
    for column in ("run_id", "strategy", "model", "dataset", "videos/class", "frames", "seed", "status",
                   "test acc", "val acc", "trainable", "seconds", "started"):
        table.add_column(column, no_wrap=column in ("run_id", "strategy", "status"))
    for row in runs.sort_values("started_at", ascending=False).head(limit).itertuples():
        table.add_row(row.run_id, row.strategy, str(row.model), str(row.dataset), _fmt(row.videos_per_class),
                      _fmt(row.frames_per_clip), _fmt(row.seed), _status(row.status), _pct(row.test_acc),
                      _pct(row.best_val_acc), _fmt(row.trainable_params), _fmt(row.train_seconds, ".1f"),
                      str(row.started_at)[:19])
    stdout_console().print(table)


@app.command()
@user_errors
def show(
    run_id: str = typer.Argument(..., help="A run id or a unique prefix of one."),
    warehouse: Path | None = WarehouseOption,
    as_json: bool = typer.Option(False, "--json", help="Print the run row as JSON, with chance_acc and "
                                 "above_chance_p."),
) -> None:
    """Show one run: spec, metrics, per-epoch curve, per-class scores and confusion."""
    from vjepa_core.warehouse import Warehouse

    store = Warehouse(existing_warehouse(warehouse))
    run = store.get_run(run_id)
    if run is None:
        fail(f"run {run_id!r} is not in {store.path}")
    chance = chance_of(store, run)
    if as_json:
        if chance is not None:
            run = {**run, "chance_acc": chance.chance, "above_chance_p": chance.p_value}
        typer.echo(json.dumps(run, default=str, indent=2))
        return
    out = stdout_console()
    out.print(f"[bold]{run['run_id']}[/]  {run['strategy']} on {run['model']}  status: {_status(run['status'])}")
    if run.get("error"):
        out.print(f"[red]error:[/] {run['error']}")
    for key in ("dataset", "videos_per_class", "frames_per_clip", "epochs", "lr", "batch_size", "seed",
                "trainable_params", "total_params", "test_acc", "test_macro_f1", "best_val_acc",
                "best_epoch", "train_seconds", "inference_ms", "peak_memory_bytes", "device",
                "checkpoint_path", "videos_skipped"):
        out.print(f"  {key:<18} {_fmt(run.get(key), '.4g')}")
    if chance is not None:
        out.print(f"  {'vs chance':<18} {chance.text()}")
    _print_frame(out, "epochs", store.table("epochs", run["run_id"]))
    _print_frame(out, "test per class", store.table("class_metrics", run["run_id"]).query("split == 'test'"))
    confusion = store.table("confusion", run["run_id"]).query("split == 'test'")
    if not confusion.empty:
        pivot = confusion.pivot_table(index="true_class", columns="pred_class", values="count", fill_value=0)
        _print_frame(out, "test confusion (rows: true, columns: predicted)", pivot.reset_index())


@app.command()
@user_errors
def export(
    out: Path = typer.Option(None, "--out", help="Folder for the files (default: <results>/exports/<time>)."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
) -> None:
    """Export every warehouse table to CSV or Parquet files."""
    from vjepa_core.warehouse import Warehouse

    if fmt not in ("csv", "parquet"):
        fail(f"--format must be csv or parquet, got {fmt!r}")
    out = out or results_path(results) / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    files = Warehouse(existing_warehouse(warehouse)).export(out, fmt)
    for path in files:
        typer.echo(str(path))


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder (results/checkpoints/<run_id>)."),
    videos: list[Path] = typer.Argument(..., help="One or more video files."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="How many labels to print per video."),
    model: str | None = typer.Option(None, help="Load the checkpoint onto this base model instead of the "
                                     "one in its manifest (must have the same weights)."),
    device: str = DeviceOption,
    decoder: str = DecoderOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per video."),
) -> None:
    """Classify videos with a saved checkpoint and print the top-k labels."""
    from vjepa_core.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, base_model=model, device=device, decoder=decoder)
    for video in videos:
        result = predictor.classify(video)
        if as_json:
            typer.echo(json.dumps({"video": str(video), **result.as_dict(top_k)}))
            continue
        typer.echo(f"{video}")
        for label, prob in result.top(top_k):
            typer.echo(f"  {prob:6.1%}  {label}")


@app.command("make-synthetic")
@user_errors
def make_synthetic_cmd(
    out_dir: Path = typer.Argument(..., help="Folder to write the dataset to."),
    videos_per_class: int = typer.Option(60, help="Videos per class."),
    classes: str = typer.Option("up,down,left,right,wave,still", help="Comma-separated motion classes."),
    height: int = typer.Option(96, help="Frame height in pixels."),
    width: int = typer.Option(128, help="Frame width in pixels."),
    frames: int = typer.Option(40, help="Frames per video."),
    noise: float = typer.Option(0.03, help="Gaussian pixel noise (0-1)."),
    texture: float = typer.Option(0.1, help="Strength of the background's colour gratings (0 = flat, 1 = busy)."),
    seed: int = typer.Option(0, help="Seed: the same seed writes the same videos."),
) -> None:
    """Write a labelled synthetic dataset of real mp4/avi videos (classes need motion to tell apart)."""
    from vjepa_core.data import make_synthetic

    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    path = make_synthetic(out_dir, classes=names, videos_per_class=videos_per_class, height=height, width=width,
                          num_frames=frames, noise=noise, texture=texture, seed=seed, progress=True)
    count = sum(1 for p in path.rglob("*") if p.suffix in (".mp4", ".avi"))
    typer.echo(f"{count} videos in {len(names)} classes written to {path}")


def existing_warehouse(value: Path | None) -> Path:
    path = warehouse_path(value)
    if not path.exists():
        raise UserError(f"no warehouse at {path}: run an experiment first (runner run --data synthetic)")
    return path


def chance_of(store: Any, run: dict[str, Any]) -> ChanceTest | None:
    from vjepa_core.stats import run_chance_test

    return run_chance_test(run, store.table("class_metrics", run["run_id"]))


def print_run_summary(run: dict[str, Any], chance: ChanceTest | None = None) -> None:
    out = stdout_console()
    if run["status"] != "success":
        out.print(f"[red]run {run['run_id']} failed:[/] {run.get('error')}")
        return
    out.print(f"[bold green]run {run['run_id']}[/] {run['strategy']}: test acc {_pct(run['test_acc'])}, "
              f"macro-F1 {_pct(run.get('test_macro_f1'))}, best val acc {_pct(run['best_val_acc'])} "
              f"(epoch {run['best_epoch']}), {_fmt(run['trainable_params'])} trainable params, "
              f"{run['train_seconds']:.1f} s")
    if chance is not None:
        out.print(f"[{'green' if chance.above else 'yellow'}]{chance.text()}[/]")
    if run.get("videos_skipped"):
        out.print(f"[yellow]{run['videos_skipped']} unreadable video(s) skipped[/]")
    out.print(f"checkpoint: {run['checkpoint_path']}\ndetails:    runner show {run['run_id']}")


def _print_frame(out: Console, title: str, frame: Any) -> None:
    if frame is None or frame.empty:
        return
    table = Table(title=title)
    columns = [c for c in frame.columns if c not in ("run_id", "split")]
    for column in columns:
        table.add_column(str(column))
    for row in frame[columns].itertuples(index=False):
        table.add_row(*[_fmt(v, ".3f") for v in row])
    out.print(table)


def _fmt(value: Any, spec: str = ".4g") -> str:
    """Integers with thousands separators, floats with `spec`, missing values as '-'."""
    if value is None or (isinstance(value, numbers.Real) and value != value):
        return "-"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return format(float(value), spec)
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None or value != value else f"{100 * float(value):.1f}%"


def _status(status: str) -> str:
    return {"success": "[green]success[/]", "failed": "[red]failed[/]"}.get(status, status)


# Commands that live in their own modules register themselves on `app` when imported.
from runner import bench_cmd, dashboard_cmd, demo_cmd, matrix_cmd  # noqa: E402, F401


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    app()



__all__ = ["RunSpec", "app", "main"]
