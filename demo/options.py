"""The demo's options, declared once: `python -m demo`'s argparse flags and `runner demo`'s typer options are both
generated from the fields of `DemoOptions` (help, default, flag), so the two commands take the same flags with the
same defaults. Light on purpose: `--help` must not import torch or gradio.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vjepa_core.fields import Option, allowed, declared, defaults, flag_default, flags, from_flags, hints, option
from vjepa_core.paths import DEFAULT_RESULTS, DEFAULT_WAREHOUSE, RESULTS_ENV, WAREHOUSE_ENV

MB = 1_000_000


def demo_option(default: Any, help: str, **details: Any) -> Any:
    return option(default, Option(help, **details))


@dataclass(frozen=True)
class DemoOptions:
    """How the demo is served; `demo.__main__.serve` checks the values (one line and exit code 2 on bad ones)."""

    checkpoints: Path | None = demo_option(None, "Checkpoints folder.", picked="<results>/checkpoints")
    results: Path | None = demo_option(
        None, f"Folder for checkpoints, caches and exports (env {RESULTS_ENV}).", picked=f"{DEFAULT_RESULTS}/")
    warehouse: Path | None = demo_option(
        None, f"DuckDB warehouse file (env {WAREHOUSE_ENV}), for the picker's test accuracies; where there is none, "
        "the picker shows the manifests' metrics.", picked=DEFAULT_WAREHOUSE)
    host: str = demo_option("127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    port: int = demo_option(7860, "Port to listen on.")
    share: bool = demo_option(False, "Also open a public gradio.live link (off by default).")
    auth: str | None = demo_option(None, "Require this login, as user:password.")
    max_mb: float = demo_option(200.0, "Largest accepted video file, in MB.")
    max_seconds: float = demo_option(120.0, "Longest accepted video, in seconds.")
    engine: str | None = demo_option(
        None, "how the model runs: auto (the fastest engine that keeps the answers: on a CPU OpenVINO int8, else "
        "ONNX Runtime int8), fp32 (eager), or another of runner predict --engine (default env VJEPA_ENGINE, else "
        "auto)")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> argparse.ArgumentParser:
    """One argparse argument per declared field of `cls`, with its flag, help and default (a bool is a flag)."""
    for name, declaration in declared(cls).items():
        default = flag_default(defaults(cls)[name], declaration)
        shown = declaration.picked or ("" if default is None or isinstance(default, bool) else default)
        help = declaration.help if shown == "" else f"{declaration.help.rstrip('.')} (default {shown})."
        if bool in allowed(hints(cls)[name]):
            parser.add_argument(*flags(name, declaration), dest=name, action="store_true", help=help)
            continue
        kind = next(kind for kind in allowed(hints(cls)[name]) if kind is not type(None))
        parser.add_argument(*flags(name, declaration), dest=name, type=kind, default=default, help=help,
                            metavar="PATH" if kind is Path else None)
    return parser


def parsed(cls: type, namespace: argparse.Namespace) -> Any:
    """`cls` from the parsed arguments of `add_arguments`."""
    return cls(**from_flags(cls, vars(namespace)))
