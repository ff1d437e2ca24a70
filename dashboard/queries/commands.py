"""The `runner` commands the dashboard shows a user, so that what they copy does what the page says.

- `command_for(command, path) -> str`: `command` with `--warehouse PATH` unless `path` is the default.
- `reproduce_command(spec) -> str`: `runner run` with a flag for every spec field that differs from the
  defaults: the same spec, hence the same run id.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from vjepa_core import paths
from vjepa_core.fields import command_line
from vjepa_core.spec import RunSpec


def command_for(command: str, path: Path) -> str:
    # The default path needs no flag; anything else must be passed, or the command writes elsewhere.
    default = Path(paths.DEFAULT_WAREHOUSE)
    return command if path == default else f"{command} --warehouse {shlex.quote(str(path))}"


def reproduce_command(spec: dict[str, Any]) -> str:
    """`runner run` with a flag for every spec field that differs from its default: same spec, same run_id.

    The flags are the ones `runner run` generates from the same fields (`vjepa_core.fields.command_line`)."""
    return command_line(RunSpec, spec, "runner run")
