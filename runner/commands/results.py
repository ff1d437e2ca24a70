"""`runner list`, `runner show` and `runner export`: reading the warehouse back."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Table

from runner.app import app, console, existing_warehouse
from runner.options import ResultsOption, WarehouseOption, fail, stdout_console, user_errors
from runner.output import chance_of, fmt, pct, print_frame, status_markup
from vjepa_core.paths import DEFAULT_WAREHOUSE, results_path


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
    from vjepa_core.store.warehouse import Warehouse

    runs = Warehouse(existing_warehouse(warehouse)).runs(strategy=strategy, status=status, matrix_id=matrix)
    if runs.empty:
        console.print("no runs yet: try `runner run --data synthetic --model tiny`")
        return
    shown = runs.sort_values("started_at", ascending=False).head(limit)
    rows = [(row.run_id, row.strategy, str(row.model).removeprefix("preset:"), str(row.dataset),
             fmt(row.videos_per_class), fmt(row.frames_per_clip), fmt(row.seed), row.status, pct(row.test_acc),
             pct(row.best_val_acc), fmt(row.trainable_params), fmt(row.train_seconds, ".1f"),
             str(row.started_at)[:16]) for row in shown.itertuples()]
    out = stdout_console()
    out.print(runs_table(f"{len(runs)} run(s)", rows, out.width))


# `runner list`'s columns. A terminal too narrow for all of them loses whole columns, least useful first (DROPPED),
# and the names (FLEXIBLE) are shortened with "…": never a figure cut to "17.…", as a boxed table once did.
LIST_COLUMNS = ("run_id", "strategy", "model", "dataset", "/class", "frames", "seed", "status", "test acc",
                "val acc", "trainable", "seconds", "started")
FLEXIBLE = ("strategy", "model", "dataset")
DROPPED = ("started", "seconds", "frames", "seed", "dataset", "trainable", "model")
GAP = 2  # spaces between columns


def runs_table(title: str, rows: list[tuple[str, ...]], width: int) -> Table:
    widths = {column: max([len(row[i]) for row in rows] + [len(column)]) for i, column in enumerate(LIST_COLUMNS)}
    least = {column: min(widths[column], 6) if column in FLEXIBLE else widths[column] for column in LIST_COLUMNS}
    kept = list(LIST_COLUMNS)
    for column in DROPPED:
        if sum(least[name] for name in kept) + GAP * len(kept) <= width:
            break
        kept.remove(column)
    flexible = [name for name in kept if name in FLEXIBLE]
    room = width - sum(widths[name] for name in kept if name not in FLEXIBLE) - GAP * len(kept)
    fits = sum(widths[name] for name in flexible) <= room
    share = None if fits else max(6, room // max(len(flexible), 1))  # each name's width where they do not all fit
    hidden = ", ".join(column for column in LIST_COLUMNS if column not in kept)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  caption=f"not shown at this width: {hidden} (a wider terminal, or pipe it)" if hidden else None)
    for column in kept:
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=least[column],
                         max_width=share if column in FLEXIBLE else None,
                         justify="left" if column in (*FLEXIBLE, "run_id", "status", "started") else "right")
    for row in rows:
        cells = dict(zip(LIST_COLUMNS, row, strict=True))
        table.add_row(*(status_markup(cells[c]) if c == "status" else cells[c] for c in kept))
    return table


@app.command()
@user_errors
def show(
    run_id: str = typer.Argument(..., help="A run id or a unique prefix of one."),
    warehouse: Path | None = WarehouseOption,
    as_json: bool = typer.Option(False, "--json", help="Print the run row as JSON, with chance_acc and "
                                 "above_chance_p."),
) -> None:
    """Show one run: spec, metrics, per-epoch curve, per-class scores and confusion."""
    from vjepa_core.spec import config_id
    from vjepa_core.store.warehouse import Warehouse

    store = Warehouse(existing_warehouse(warehouse))
    run = store.get_run(run_id)
    if run is None:
        fail(f"run {run_id!r} is not in {store.path}")
    chance = chance_of(store, run)
    interval = test_interval(run)
    release = release_line(run, store.path)
    if as_json:
        if release is not None:
            run = {**run, "release_command": release}
        if chance is not None:
            run = {**run, "chance_acc": chance.chance, "above_chance_p": chance.p_value}
        if interval is not None:
            run = {**run, "test_acc_ci_low": interval["ci_low"], "test_acc_ci_high": interval["ci_high"],
                   "test_acc_interval": interval["interval"]}
        typer.echo(json.dumps(run, default=str, indent=2))
        return
    out = stdout_console()
    out.print(f"[bold]{run['run_id']}[/]  {run['strategy']} on {run['model']}  status: {status_markup(run['status'])}")
    if run.get("error"):
        out.print(f"[red]error:[/] {run['error']}")
    for key in ("dataset", "videos_per_class", "frames_per_clip", "epochs", "lr", "batch_size", "seed",
                "trainable_params", "total_params", "test_acc", "test_macro_f1", "best_val_acc",
                "best_epoch", "train_seconds", "inference_ms", "peak_memory_bytes", "device",
                "checkpoint_path", "videos_skipped"):
        out.print(f"  {key:<18} {fmt(run.get(key), '.4g')}")
    if run.get("spec"):  # `runner compare` takes it: every seed of this configuration
        out.print(f"  {'configuration':<18} {config_id(run['spec'])}")
    if chance is not None:
        out.print(f"  {'vs chance':<18} {chance.text()}")
    if interval is not None:
        out.print(f"  {'test acc 95% CI':<18} {pct(interval['ci_low'])} - {pct(interval['ci_high'])} "
                  f"({interval['interval']}: one seed, so the test set's own noise)")
    if release is not None:  # the folder plain transformers opens, with its model card
        out.print(f"  {'release':<18} {release}")
    print_frame(out, "epochs", store.table("epochs", run["run_id"]))
    print_frame(out, "test per class", store.table("class_metrics", run["run_id"]).query("split == 'test'"))
    confusion = store.table("confusion", run["run_id"]).query("split == 'test'")
    if not confusion.empty:
        pivot = confusion.pivot_table(index="true_class", columns="pred_class", values="count", fill_value=0)
        print_frame(out, "test confusion (rows: true, columns: predicted)", pivot.reset_index())


def release_line(run: dict[str, Any], warehouse: Path) -> str | None:
    """`runner release` for a successful run with a checkpoint (with --warehouse unless it is the default)."""
    from vjepa_core.release.command import release_command

    if run["status"] != "success" or not run.get("checkpoint_path"):
        return None
    elsewhere = None if warehouse == Path(DEFAULT_WAREHOUSE) else str(warehouse)
    return release_command(run["run_id"], f"release-{run['run_id'][:8]}", warehouse=elsewhere)


@app.command()
@user_errors
def export(
    out: Path = typer.Option(None, "--out", help="Folder for the files (default: <results>/exports/<time>)."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
) -> None:
    """Export every warehouse table to CSV or Parquet files."""
    from vjepa_core.store.warehouse import Warehouse

    if fmt not in ("csv", "parquet"):
        fail(f"--format must be csv or parquet, got {fmt!r}")
    out = out or results_path(results) / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    files = Warehouse(existing_warehouse(warehouse)).export(out, fmt)
    for path in files:
        typer.echo(str(path))


def test_interval(run: dict[str, Any]) -> dict[str, Any] | None:
    """The 95% interval of one run's test accuracy: Wilson over its test videos."""
    from vjepa_core.analysis.stats import accuracy_summary

    if run.get("status") != "success" or run.get("test_acc") is None or not run.get("num_test"):
        return None
    return accuracy_summary([run["test_acc"]], [int(run["num_test"])])
