"""`runner cache ls|clear`: the frozen-backbone token cache under <results>/cache/, or (`--engines`) the prepared
inference engines under <results>/engines/ (`vjepa_core.inference.engines.store`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from runner.app import app
from runner.options import ResultsOption, fail, stdout_console, user_errors
from vjepa_core.paths import cache_dir, engines_dir

cache_app = typer.Typer(no_args_is_help=True, help="The frozen-backbone token cache under <results>/cache/, and "
                        "the prepared inference engines under <results>/engines/ (--engines).")
EnginesOption = typer.Option(False, "--engines", help="The prepared inference engines (runner predict --engine) "
                             "under <results>/engines/ instead of the token cache.")
app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
@user_errors
def cache_ls(results: Path | None = ResultsOption, engines: bool = EnginesOption,
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object per group (or engine).")
             ) -> None:
    """List cache groups (one per model x preprocessing x kind): entries and size on disk. With --engines, the
    prepared inference engines: engine, model, clip shape, whether it kept fp32's answers, size, last use."""
    from vjepa_core.store.cache import list_groups

    if engines:
        _engines_ls(engines_dir(results), as_json=as_json)
        return
    root = cache_dir(results)
    groups = list_groups(root)
    if _said_without_table(groups, as_json=as_json, empty=f"the cache at {root} is empty"):
        if not as_json:
            _engines_note(engines_dir(results))
        return
    table = Table(title=f"token cache {root}: {sum(g['bytes'] for g in groups) / 2**20:.1f} MiB")
    for column in ("group", "model", "kind", "frames", "stride", "crop", "precision", "entries", "MiB", "last write"):
        table.add_column(column)
    for g in groups:
        written = datetime.fromtimestamp(g["last_write"]).strftime("%Y-%m-%d %H:%M") if g["last_write"] else "-"
        table.add_row(g["group"], str(g["model"]), str(g["kind"]), str(g["frames_per_clip"]), str(g["frame_stride"]),
                      str(g["crop_size"]), str(g["precision"]), str(g["entries"]), f"{g['bytes'] / 2**20:.1f}", written)
    stdout_console().print(table)
    _engines_note(engines_dir(results))


def _engines_ls(root: Path, *, as_json: bool) -> None:
    from vjepa_core.inference.engines.store import list_entries

    entries = list_entries(root)
    if _said_without_table(entries, as_json=as_json, empty=f"no prepared engines at {root}"):
        return
    table = Table(title=f"prepared inference engines {root}: {sum(e['bytes'] for e in entries) / 2**20:.1f} MiB")
    for column in ("key", "engine", "part", "model", "frames", "crop", "status", "vs fp32", "MiB", "setup s",
                   "last use"):
        table.add_column(column)
    for e in entries:
        check = e["check"] or {}
        agreement = (f"max |dp| {check['max_prob_diff']:.4f}, bound {check['prob_bound']:.4f}"
                     if check.get("max_prob_diff") is not None else
                     f"token error {check['token_error']:.4f}" if check.get("token_error") is not None else "-")
        table.add_row(e["key"], str(e["engine"]), str(e["part"]), str(e["model"]), str(e["frames"]), str(e["crop"]),
                      str(e["status"]), agreement,
                      f"{e['bytes'] / 2**20:.1f}", f"{e['setup_s'] or 0:.1f}",
                      datetime.fromtimestamp(e["last_used"]).strftime("%Y-%m-%d %H:%M"))
    stdout_console().print(table)


def _said_without_table(rows: list[dict], *, as_json: bool, empty: str) -> bool:
    """Print `rows` as JSON lines, or `empty` when there are none; False when a table is still to print."""
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
    elif not rows:
        typer.echo(empty)
    return as_json or not rows


def _engines_note(root: Path) -> None:
    from vjepa_core.inference.engines.store import list_entries

    entries = list_entries(root)
    if entries:
        typer.echo(f"prepared inference engines: {len(entries)} ({sum(e['bytes'] for e in entries) / 2**20:.1f} MiB), "
                   f"see runner cache ls --engines")


@cache_app.command("clear")
@user_errors
def cache_clear(results: Path | None = ResultsOption, engines: bool = EnginesOption,
                all_entries: bool = typer.Option(False, "--all", help="Delete every entry."),
                older_than: float | None = typer.Option(None, "--older-than", help="Delete entries last written "
                                                        "more than this many days ago.")) -> None:
    """Delete cache entries: --all, or those --older-than N days (for --engines: last used). They are rebuilt when
    needed."""
    from vjepa_core.inference.engines import store
    from vjepa_core.store.cache import clear

    if all_entries == (older_than is not None):
        fail("cache clear needs exactly one of --all or --older-than DAYS")
    if older_than is not None and older_than < 0:
        fail(f"--older-than must be >= 0 days, got {older_than}")
    if engines:
        clear = store.clear
    root = engines_dir(results) if engines else cache_dir(results)
    entries, size = clear(root, older_than_seconds=None if all_entries else older_than * 86400)
    typer.echo(f"removed {entries} entries ({size / 2**20:.1f} MiB) from {root}")
