"""The `runner` commands the dashboard shows a user, so that what they copy does what the page says.

- `command_for(command, path) -> str`: `command` with `--warehouse PATH` unless `path` is the default.
- `reproduce_command(spec) -> str`: `runner run` with a flag for every spec field that differs from the
  defaults: the same spec, hence the same run id.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from vjepa_core import paths
from vjepa_core.spec import RunSpec, field_names


def command_for(command: str, path: Path) -> str:
    # The default path needs no flag; anything else must be passed, or the command writes elsewhere.
    default = Path(paths.DEFAULT_WAREHOUSE)
    return command if path == default else f"{command} --warehouse {shlex.quote(str(path))}"



def reproduce_command(spec: dict[str, Any]) -> str:
    """`runner run` with a flag for every spec field that differs from RunSpec(): same spec, same run_id."""
    # The dataclass defaults, not RunSpec(): constructing one validates the strategy, which imports torch.
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec)}
    parts = ["runner", "run"]
    for name in field_names():
        if name not in spec or json.dumps(spec[name]) == json.dumps(defaults[name]):  # JSON: a list is a tuple
            continue
        flag, value = "--" + name.replace("_", "-"), spec[name]
        if isinstance(value, list | tuple):
            parts.append(f"{flag}={','.join(map(str, value))}")  # '=': -7,-5 must not read as a flag
        elif isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            # repr round-trips a float exactly, so the rebuilt spec hashes the same.
            parts += [flag, shlex.quote(repr(value) if isinstance(value, float) else str(value))]
    return " ".join(parts)
