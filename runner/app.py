"""The `runner` typer app and what its commands share: common options, execution options, paths.

Command modules (`runner/commands/`) import `app` from here and register themselves on it;
`runner/cli.py` imports them in the order `--help` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from runner.options import flag_parameters, option_group
from vjepa_core.errors import UserError
from vjepa_core.fields import from_flags
from vjepa_core.inference.engines import ENGINE_ENV, engine_help
from vjepa_core.paths import warehouse_path
from vjepa_core.spec import EXEC_OPTIONS, ExecOptions

app = typer.Typer(
    name="runner", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Fine-tune V-JEPA 2 on your videos: single runs, strategy x data-size x frames matrices and "
         "sweeps, all recorded in a DuckDB warehouse.",
)
console = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="YAML file of run options (flags override it).")
EngineOption = typer.Option("auto", "--engine", envvar=ENGINE_ENV,
                            help=f"{engine_help()} Compare them with runner bench --inference.")


def exec_flag(name: str, **default: Any) -> Any:
    """The option of the `ExecOptions` field `name`, for a command that takes it on its own (`--device`)."""
    return flag_parameters(ExecOptions, [name], **default)[0].default


def exec_options(**flags: Any) -> ExecOptions:
    """`ExecOptions` from the values of its flags, by field name (unset: the field's default; workers: picked)."""
    from vjepa_core.training.features import default_workers

    values = from_flags(ExecOptions, flags)
    if values.get("num_workers") is None:
        values["num_workers"] = default_workers()
    return ExecOptions(**values)


def with_exec_options(*own: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the flags of the shared `ExecOptions` fields (--device, --decoder, --workers, --checkpoint-dtype,
    --quiet) and of the fields named in `own` (--no-cache, --joint); the command gets `execution: ExecOptions`."""
    names = [name for name, o in EXEC_OPTIONS.items() if o.shared] + list(own)
    return option_group(flag_parameters(ExecOptions, names), exec_options, "execution")


def existing_warehouse(value: Path | None) -> Path:
    path = warehouse_path(value)
    if not path.is_file() and not path.is_dir():  # a folder: the store says what to pass instead
        raise UserError(f"no warehouse at {path}: run an experiment first (runner run --data synthetic)")
    return path


