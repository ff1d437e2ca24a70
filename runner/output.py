"""How the runner prints results: runs, tables and numbers (rich markup on stdout)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from runner.options import stdout_console

if TYPE_CHECKING:
    from vjepa_core.analysis.stats import ChanceTest


def chance_of(store: Any, run: dict[str, Any]) -> ChanceTest | None:
    from vjepa_core.analysis.stats import run_chance_test

    return run_chance_test(run, store.table("class_metrics", run["run_id"]))


def print_run_summary(run: dict[str, Any], chance: ChanceTest | None = None) -> None:
    out = stdout_console()
    if run["status"] != "success":
        # One line, never wrapped: it names a path and what to do.
        out.print(f"[red]run {run['run_id']} failed:[/] {run.get('error')}", soft_wrap=True)
        return
    out.print(f"[bold green]run {run['run_id']}[/] {run['strategy']}: test acc {pct(run['test_acc'])}, "
              f"macro-F1 {pct(run.get('test_macro_f1'))}, best val acc {pct(run['best_val_acc'])} "
              f"(epoch {run['best_epoch']}), {fmt(run['trainable_params'])} trainable params, "
              f"{run['train_seconds']:.1f} s")
    if chance is not None:
        out.print(f"[{'green' if chance.above else 'yellow'}]{chance.text()}[/]")
    if run.get("videos_skipped"):
        out.print(f"[yellow]{run['videos_skipped']} unreadable video(s) skipped[/]")
    out.print(f"checkpoint: {run['checkpoint_path']}\ndetails:    runner show {run['run_id']}")


def print_frame(out: Console, title: str, frame: Any) -> None:
    if frame is None or frame.empty:
        return
    table = Table(title=title)
    columns = [c for c in frame.columns if c not in ("run_id", "split")]
    specs = [_float_spec(frame[column]) for column in columns]
    for column in columns:
        table.add_column(str(column))
    for row in frame[columns].itertuples(index=False):
        table.add_row(*[fmt(v, spec) for v, spec in zip(row, specs, strict=True)])
    out.print(table)


def _float_spec(values: Any) -> str:
    """Three decimals, or three significant digits for a column of small numbers (a learning rate of 2e-05 is not
    0.000)."""
    small = [abs(v) for v in values if isinstance(v, float) and v == v]
    return ".3g" if small and 0 < max(small) < 0.1 else ".3f"


def fmt(value: Any, spec: str = ".4g") -> str:
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


def pct(value: Any) -> str:
    return "-" if value is None or value != value else f"{100 * float(value):.1f}%"


def status_markup(status: str) -> str:
    return {"success": "[green]success[/]", "failed": "[red]failed[/]"}.get(status, status)
