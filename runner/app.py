"""The `runner` typer app and what its commands share: common options, execution options, paths.

Command modules (`runner/commands/`) import `app` from here and register themselves on it;
`runner/cli.py` imports them in the order `--help` lists them.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from runner.options import keyword, option_group, progress_enabled
from vjepa_core.errors import UserError
from vjepa_core.inference.engines import ENGINE_ENV, engine_help
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
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress (bars on a terminal, plain lines every 10% or "
                           "30 s in a log file).")
WorkersOption = typer.Option(None, "--workers", show_default="half the CPUs, 1-4",
                             help="DataLoader worker processes for decoding (0 = decode in the main process).")
EngineOption = typer.Option("auto", "--engine", envvar=ENGINE_ENV,
                            help=f"{engine_help()} Compare them with runner bench --inference.")
CHECKPOINT_DTYPES = ("auto", "fp32", "fp16", "bf16")

# How runs execute (vjepa_core.spec.ExecOptions): the same options on every command that trains.
EXEC_PARAMETERS = [
    keyword("device", str, DeviceOption),
    keyword("decoder", str, DecoderOption),
    keyword("workers", int | None, WorkersOption),
    keyword("checkpoint_dtype", str, typer.Option(
        "auto", "--checkpoint-dtype", help="Weights in checkpoints: fp32, fp16, bf16, or auto (half precision for "
        "bf16/fp16 runs and for pooler-sized checkpoints, fp32 for encoder weights trained in fp32).")),
    keyword("quiet", bool, QuietOption),
]


def exec_options(*, device: str = "auto", decoder: str = "auto", workers: int | None = None, quiet: bool = False,
                 checkpoint_dtype: str = "auto") -> ExecOptions:
    from vjepa_core.training.features import default_workers

    if checkpoint_dtype not in CHECKPOINT_DTYPES:
        raise UserError(f"--checkpoint-dtype: expected one of {', '.join(CHECKPOINT_DTYPES)}, got {checkpoint_dtype!r}")
    return ExecOptions(device=device, decoder=decoder, num_workers=default_workers() if workers is None else workers,
                       progress=progress_enabled(quiet), checkpoint_dtype=checkpoint_dtype)


# Adds --device, --decoder, --workers, --checkpoint-dtype and --quiet; the command gets `execution: ExecOptions`.
with_exec_options = option_group(EXEC_PARAMETERS, exec_options, "execution")


def existing_warehouse(value: Path | None) -> Path:
    path = warehouse_path(value)
    if not path.exists():
        raise UserError(f"no warehouse at {path}: run an experiment first (runner run --data synthetic)")
    return path


