"""The `runner` typer app and what its commands share: common options, execution options, paths.

Command modules (`runner/*_cmd.py`) import `app` from here and register themselves on it;
`runner/cli.py` imports them in the order `--help` lists them.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from runner.options import progress_enabled
from vjepa_core.errors import UserError
from vjepa_core.paths import warehouse_path
from vjepa_core.spec import ExecOptions

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
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress (bars on a terminal, plain lines every 10% or "
                           "30 s in a log file).")


def exec_options(device: str, decoder: str, workers: int | None, quiet: bool, *, cache: bool = True,
                 matrix_id: str | None = None) -> ExecOptions:
    from vjepa_core.training.features import default_workers

    workers = default_workers() if workers is None else workers
    return ExecOptions(device=device, decoder=decoder, num_workers=workers, cache=cache,
                       progress=progress_enabled(quiet), matrix_id=matrix_id)


def existing_warehouse(value: Path | None) -> Path:
    path = warehouse_path(value)
    if not path.exists():
        raise UserError(f"no warehouse at {path}: run an experiment first (runner run --data synthetic)")
    return path


