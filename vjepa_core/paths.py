"""Where results live by default: the one home of the warehouse/results defaults and their variables.

Every entry point (runner, dashboard, demo) resolves paths here: an explicit value, else the
environment variable, else the default relative to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_ENV = "VJEPA_WAREHOUSE"
RESULTS_ENV = "VJEPA_RESULTS"
DEFAULT_WAREHOUSE = "warehouse/vjepa.duckdb"
DEFAULT_RESULTS = "results"
# The folder holding vjepa_core/ and runner/: the source checkout of an editable install, else site-packages.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def warehouse_path(value: str | os.PathLike[str] | None = None) -> Path:
    """`value`, else $VJEPA_WAREHOUSE, else warehouse/vjepa.duckdb."""
    return Path(value or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


def results_path(value: str | os.PathLike[str] | None = None) -> Path:
    """`value`, else $VJEPA_RESULTS, else results/."""
    return Path(value or os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)


def checkpoints_dir(results: str | os.PathLike[str] | None = None) -> Path:
    return results_path(results) / "checkpoints"


def cache_dir(results: str | os.PathLike[str] | None = None) -> Path:
    return results_path(results) / "cache"


def engines_dir(results: str | os.PathLike[str] | None = None) -> Path:
    """Prepared inference engines (`vjepa_core.inference.engines.store`), beside the token cache."""
    return results_path(results) / "engines"


def checkpoint_results(checkpoint: str | os.PathLike[str], results: str | os.PathLike[str] | None = None) -> Path:
    """The results folder a command on `checkpoint` writes to: `results` when given, else the folder the checkpoint
    was saved in (<results>/checkpoints/<run_id>), else $VJEPA_RESULTS or results/."""
    folder = Path(checkpoint).resolve()
    if results is None and folder.parent.name == "checkpoints":
        return folder.parent.parent
    return results_path(results)
