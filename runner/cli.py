"""`runner`: run V-JEPA 2 fine-tuning experiments and keep every result in a DuckDB warehouse.

This module only wires the commands (each lives in `runner/commands/` and registers itself on
`runner.app.app` when imported, in the order `--help` lists them) and sets up logging.
Every command explains itself with --help; bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import importlib
import logging

from runner.app import app

# Importing a command module registers its commands, in this order in --help.
COMMAND_MODULES = ("run", "matrix", "verdict", "plan", "pretrain", "results", "predict", "embed", "release", "convert",
                   "bench", "cache", "dashboard", "demo")
for _module in COMMAND_MODULES:
    importlib.import_module(f"runner.commands.{_module}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    app()


__all__ = ["app", "main"]
