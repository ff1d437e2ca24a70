"""CLI plumbing shared by the runner's commands: options generated from declared fields, paths, one-line errors.

A command's options come from the dataclass fields that declare them (`vjepa_core.fields`): `spec_parameters`
gives one flag per `RunSpec` or `PretrainSpec` field (unset flags are None, laid over defaults <- YAML),
`flag_parameters` one per field of any other declared dataclass (`ExecOptions`, `DemoOptions`), and
`option_group` hands a command the flags' values as ONE argument, built by a function of them.
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
from vjepa_core.fields import allowed, declared, defaults, flag, flag_default, flags, hints, shown
from vjepa_core.paths import (
    DEFAULT_RESULTS,
    DEFAULT_WAREHOUSE,
    RESULTS_ENV,
    WAREHOUSE_ENV,
)
from vjepa_core.spec import RunSpec

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


def _plain_terminate_in_child() -> None:
    """A process a library forks from a command (OpenVINO's telemetry sender, say) dies of SIGTERM as usual: with
    our handler it would wait for Python code to run, and one stuck in C (a DNS lookup after fork) never exits,
    so its parent, joining it at exit, never exits either."""
    if signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_plain_terminate_in_child)


def keyword(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    """A keyword-only parameter `name: annotation = option`, for `option_group`."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)


def option_group(parameters: list[inspect.Parameter], build: Callable[..., Any], name: str
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding `parameters` (typer options) to a command, which receives them as ONE argument
    `name` = `build(**their values)`: options shared by several commands are declared once."""
    names = [p.name for p in parameters]

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in names}
            return func(*args, **{name: build(**values)}, **kwargs)

        own = [p for p in inspect.signature(func).parameters.values() if p.name != name]
        wrapper.__signature__ = inspect.Signature([*own, *parameters])  # type: ignore[attr-defined]
        return wrapper

    return decorator


def spec_parameters(spec_class: type, *, panel: str) -> list[inspect.Parameter]:
    """One option per field of `spec_class`: `--frames-per-clip`, `--augment/--no-augment`; unset is None."""
    params = []
    for name, declaration in declared(spec_class).items():
        kind, default = _cli_type(hints(spec_class)[name]), defaults(spec_class)[name]
        decls = [f"{flag(name)}/--no-{flag(name)[2:]}"] if kind is bool else [flag(name)]
        option = typer.Option(None, *decls, help=declaration.help, rich_help_panel=panel,
                              show_default=shown(default) or False)  # "": nothing to show (pretrain's --probe-data)
        params.append(keyword(name, kind | None, option))
    return params


def flag_parameters(cls: type, names: list[str] | None = None, **defaults_: Any) -> list[inspect.Parameter]:
    """One option per field of `cls` in `names` (default: every field with a flag), named after the field, with its
    declared flag, help and default (`defaults_` overrides a default by field name); a bool is a plain flag."""
    params = []
    options = declared(cls)
    for name in names or [n for n, o in options.items() if o.on_cli]:
        declaration, hint = options[name], hints(cls)[name]
        default = defaults_.get(name, flag_default(defaults(cls)[name], declaration))
        kind = _cli_type(hint)
        picked = declaration.picked if name not in defaults_ else None
        option = typer.Option(default, *flags(name, declaration), help=declaration.help, show_default=picked or True)
        optional = kind is not bool and (default is None or type(None) in allowed(hint))
        params.append(keyword(name, kind | None if optional else kind, option))
    return params


def _cli_type(hint: Any) -> Any:
    """The type typer parses: a literal's or a tuple's text is checked by the spec (a tuple is written 17,19,21)."""
    if typing.get_origin(hint) in (Literal, tuple):
        return str
    return next(kind for kind in allowed(hint) if kind is not type(None))


def set_flags(**values: Any) -> dict[str, Any]:
    """The options the user gave (typer passes None for the others)."""
    return {name: value for name, value in values.items() if value is not None}


# Every RunSpec field as an option; the command gets `overrides`: the flags set, to lay over defaults <- YAML.
with_spec_options = option_group(spec_parameters(RunSpec, panel="Run options"), set_flags, "overrides")


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config: {path} does not exist")
    from vjepa_core.data.datasets import read_user_text

    try:  # UTF-8, or a Unicode form by its BOM, whatever the locale's encoding
        values = yaml.safe_load(read_user_text(path))
    except yaml.YAMLError as exc:
        raise UserError(f"config: {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if values is None:
        raise UserError(f"config: {path} is empty: it must hold a mapping of run options")
    if not isinstance(values, dict):
        raise UserError(f"config: {path} must hold a mapping of run options")
    return values


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's own words for what is wrong, and where: 'line 3, column 9: mapping values are not allowed here'."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem or exc.__class__.__name__}"


def build_spec(config: Path | None, overrides: dict[str, Any]) -> RunSpec:
    """defaults <- YAML <- CLI flags."""
    values = load_yaml(config) if config else {}
    return RunSpec.from_dict({**values, **overrides})


def progress_enabled(quiet: bool) -> bool:
    """Progress unless --quiet: bars on a terminal, plain lines in a log (vjepa_core.progress)."""
    return not quiet
