"""CLI plumbing shared by the runner's commands: run-spec flags, paths, one-line errors.

`with_spec_options` adds one `--flag` per `RunSpec` field to a typer command (generated from the
dataclass, so the CLI can never fall out of step with the spec); the command receives them as a
dict of only the flags the user set, to lay over defaults <- YAML.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import typer
import yaml
from rich.console import Console

from vjepa_core.errors import UserError, WriteFailed
from vjepa_core.paths import (
    DEFAULT_RESULTS,
    DEFAULT_WAREHOUSE,
    RESULTS_ENV,
    WAREHOUSE_ENV,
)
from vjepa_core.spec import FIELD_HELP, RunSpec, field_names, field_type

WarehouseOption = typer.Option(None, "--warehouse", envvar=WAREHOUSE_ENV, show_default=DEFAULT_WAREHOUSE,
                               help="DuckDB warehouse file (env VJEPA_WAREHOUSE).")
ResultsOption = typer.Option(None, "--results", envvar=RESULTS_ENV, show_default=DEFAULT_RESULTS + "/",
                             help="Folder for checkpoints, caches and exports (env VJEPA_RESULTS).")


PIPED_WIDTH = 200  # rich wraps tables at 80 columns when stdout is a file or pipe; results need more


def stdout_console() -> Console:
    """The console results go to: the terminal's width, or wide enough for tables when piped."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None)


def fail(message: str, code: int = 2) -> typing.NoReturn:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError anywhere below a command into one red line and exit code 2 (a disk that
    refused a write outside any run, e.g. the warehouse's, into one line and exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _terminate_as_interrupt():
                return func(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except WriteFailed as exc:
            fail(str(exc), code=1)
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True, fg="yellow")
            raise typer.Exit(130) from None

    return wrapper


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) ends a command as Ctrl-C does: claims released, a matrix marked interrupted, exit 130."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _cli_type(name: str) -> Any:
    allowed = typing.get_args(field_type(name)) or (field_type(name),)
    if typing.get_origin(field_type(name)) in (Literal, tuple):
        return str  # a tuple of layers is written 17,19,21,23
    kinds = [a for a in allowed if a is not type(None)]
    return kinds[0] if len(kinds) == 1 else kinds[0]


def _shown(default: Any) -> str:
    return ",".join(map(str, default)) or "none" if isinstance(default, tuple) else str(default)


def spec_parameters() -> list[inspect.Parameter]:
    params = []
    for name in field_names():
        flag = "--" + name.replace("_", "-")
        kind = _cli_type(name)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        option = typer.Option(None, *decls, help=FIELD_HELP[name], rich_help_panel="Run options",
                              show_default=_shown(getattr(RunSpec(), name)))
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=kind | None))
    return params


def with_spec_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add every RunSpec field as an option; pass the set ones to `func` as `overrides: dict`."""
    names = field_names()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {name: kwargs.pop(name) for name in names if kwargs.get(name) is not None}
        for name in names:
            kwargs.pop(name, None)
        return func(*args, overrides=overrides, **kwargs)

    own = [p for p in inspect.signature(func).parameters.values() if p.name != "overrides"]
    wrapper.__signature__ = inspect.Signature([*own, *spec_parameters()])  # type: ignore[attr-defined]
    return wrapper


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config: {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config: {path} is not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(values, dict):
        raise UserError(f"config: {path} must hold a mapping of run options")
    return values


def build_spec(config: Path | None, overrides: dict[str, Any]) -> RunSpec:
    """defaults <- YAML <- CLI flags."""
    values = load_yaml(config) if config else {}
    return RunSpec.from_dict({**values, **overrides})


def progress_enabled(quiet: bool) -> bool:
    """Progress unless --quiet: bars on a terminal, plain lines in a log (vjepa_core.progress)."""
    return not quiet
