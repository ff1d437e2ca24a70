"""`runner cache ls|clear`: the frozen-backbone token cache under <results>/cache/."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from runner.app import app
from runner.options import ResultsOption, fail, stdout_console, user_errors
from vjepa_core.paths import cache_dir

cache_app = typer.Typer(no_args_is_help=True, help="The frozen-backbone token cache under <results>/cache/.")
app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
@user_errors
def cache_ls(results: Path | None = ResultsOption,
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object per group.")) -> None:
    """List cache groups (one per model x preprocessing x kind): entries and size on disk."""
    from vjepa_core.store.cache import list_groups

    root = cache_dir(results)
    groups = list_groups(root)
    if as_json:
        for group in groups:
            typer.echo(json.dumps(group, default=str))
        return
    if not groups:
        typer.echo(f"the cache at {root} is empty")
        return
    table = Table(title=f"token cache {root}: {sum(g['bytes'] for g in groups) / 2**20:.1f} MiB")
    for column in ("group", "model", "kind", "frames", "stride", "crop", "precision", "entries", "MiB", "last write"):
        table.add_column(column)
    for g in groups:
        written = datetime.fromtimestamp(g["last_write"]).strftime("%Y-%m-%d %H:%M") if g["last_write"] else "-"
        table.add_row(g["group"], str(g["model"]), str(g["kind"]), str(g["frames_per_clip"]), str(g["frame_stride"]),
                      str(g["crop_size"]), str(g["precision"]), str(g["entries"]), f"{g['bytes'] / 2**20:.1f}", written)
    stdout_console().print(table)


@cache_app.command("clear")
@user_errors
def cache_clear(results: Path | None = ResultsOption,
                all_entries: bool = typer.Option(False, "--all", help="Delete every entry."),
                older_than: float | None = typer.Option(None, "--older-than", help="Delete entries last written "
                                                        "more than this many days ago.")) -> None:
    """Delete cache entries: --all, or those --older-than N days. They are rebuilt when needed."""
    from vjepa_core.store.cache import clear

    if all_entries == (older_than is not None):
        fail("cache clear needs exactly one of --all or --older-than DAYS")
    if older_than is not None and older_than < 0:
        fail(f"--older-than must be >= 0 days, got {older_than}")
    root = cache_dir(results)
    entries, size = clear(root, older_than_seconds=None if all_entries else older_than * 86400)
    typer.echo(f"removed {entries} entries ({size / 2**20:.1f} MiB) from {root}")
