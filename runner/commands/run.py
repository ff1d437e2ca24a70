"""`runner run` (one experiment, recorded in the warehouse) and `runner make-synthetic`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from runner.app import ConfigOption, app, exec_options, with_exec_options
from runner.options import ResultsOption, WarehouseOption, build_spec, user_errors, with_spec_options
from runner.output import chance_of, print_run_summary
from vjepa_core.paths import results_path, warehouse_path
from vjepa_core.spec import ExecOptions


@app.command()
@user_errors
@with_exec_options("cache")
@with_spec_options
def run(
    config: Path | None = ConfigOption,
    force: bool = typer.Option(False, "--force", help="Run again even if this exact spec already succeeded."),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    execution: ExecOptions | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Run one experiment (defaults <- --config YAML <- flags) and record it in the warehouse.

    Example: runner run --data synthetic --strategy lora --model tiny --epochs 2
    """
    from runner.orchestration.execute import execute_one
    from vjepa_core.store.claims import RunningElsewhere
    from vjepa_core.store.warehouse import Warehouse

    spec = build_spec(config, overrides or {})
    try:
        record = execute_one(spec, results_path(results), warehouse_path(warehouse), execution or exec_options(),
                             force=force)
    except RunningElsewhere as skipped:  # not an error: the run is in good hands
        typer.echo(str(skipped))
        return
    print_run_summary(record, chance_of(Warehouse(warehouse_path(warehouse)), record))
    if record["status"] != "success":
        raise typer.Exit(1)


@app.command("make-synthetic")
@user_errors
def make_synthetic_cmd(
    out_dir: Path = typer.Argument(..., help="Folder to write the dataset to."),
    videos_per_class: int = typer.Option(60, help="Videos per class."),
    classes: str = typer.Option("default", help="Comma-separated motion classes, or 'default' (up, down, left, "
                                "right, wave, still), 'source' (up_left, up_right, down_left, down_right, grow, "
                                "shrink, orbit, spin: another labelled task), or 'unlabelled' (a corpus of random "
                                "motions for runner pretrain)."),
    height: int = typer.Option(96, help="Frame height in pixels."),
    width: int = typer.Option(128, help="Frame width in pixels."),
    frames: int = typer.Option(40, help="Frames per video."),
    noise: float = typer.Option(0.03, help="Gaussian pixel noise (0-1)."),
    texture: float = typer.Option(0.1, help="Strength of the background's colour gratings (0 = flat, 1 = busy)."),
    seed: int = typer.Option(0, help="Seed: the same seed writes the same videos."),
) -> None:
    """Write a synthetic dataset of real mp4/avi videos (classes need motion to tell apart), or an unlabelled corpus."""
    from vjepa_core.data import make_synthetic
    from vjepa_core.data.synthetic import class_names

    names = class_names(classes)
    path = make_synthetic(out_dir, classes=names, videos_per_class=videos_per_class, height=height, width=width,
                          num_frames=frames, noise=noise, texture=texture, seed=seed, progress=True)
    count = sum(1 for p in path.rglob("*") if p.suffix in (".mp4", ".avi"))
    typer.echo(f"{count} videos in {len(names)} classes written to {path}")
