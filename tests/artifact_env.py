"""Environments built from nothing but what a released artifact declares: a Space's `requirements.txt`, a model
card's `pip install` line. Each is a new virtual environment made by uv, without vjepa-lab or the project's
environment, holding exactly those packages and what they require.

uv's cache hard-links installed files, so an environment whose packages the cache holds takes about a second
(torch's 5 GB included); the first one on a machine unpacks them once. Packages come from where the project's
pip takes them: pip's configured find-links, indexes and constraints are passed to uv, which reads no pip
configuration. `ArtifactEnvs.python(requirements)` builds one environment per requirement set and session and
hands it to every test asking for that set (they only run it). When no package registry answers, the test
skips and says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# pip's configuration keys -> uv's options. pip looks in every index for the best match; so must uv.
PIP_OPTIONS = {"index-url": "--default-index", "extra-index-url": "--index", "find-links": "--find-links",
               "constraint": "--constraint"}
UNREACHABLE = re.compile(r"dns error|failed to lookup address|error sending request|connection refused|"
                         r"network is unreachable|operation timed out|the network was disabled", re.IGNORECASE)
# The artifact's own process: none of the test process's paths, and no hub calls (every model is a local folder).
HIDDEN = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def pip_configuration() -> list[str]:
    """uv options for the sources pip is configured with here (files and PIP_* variables; the last one set wins)."""
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             check=True).stdout
    values: dict[str, str] = {}
    for line in listing.splitlines():
        match = re.fullmatch(r"[^.]*\.([a-z-]+)='(.*)'", line.strip())
        if match and match[1] in PIP_OPTIONS:
            values[match[1]] = match[2]
    return [part for key, value in values.items() for item in value.split() for part in (PIP_OPTIONS[key], item)]


def artifact_environ(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in HIDDEN}
    return {**env, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}


@dataclass
class ArtifactEnvs:
    root: Path
    built: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def python(self, requirements: list[str], *, what: str) -> Path:
        """The interpreter of an environment holding exactly `requirements` (and what they require)."""
        key = tuple(sorted(requirements))
        if key not in self.built:
            self.built[key] = self._build(key, what)
        return self.built[key]

    def _build(self, requirements: tuple[str, ...], what: str) -> Path:
        from uv import find_uv_bin  # the test extra's; imported here so that the other tests run without it

        folder = self.root / hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
        uv = find_uv_bin()
        # The interpreter the project's environment was made from, not that environment.
        subprocess.run([uv, "venv", "--quiet", "--python", sys._base_executable, str(folder)], check=True,
                       capture_output=True)
        python = folder / "bin" / "python"
        install = [uv, "pip", "install", "--python", str(python), "--index-strategy", "unsafe-best-match",
                   *pip_configuration(), *requirements]
        done = subprocess.run(install, capture_output=True, text=True, env=artifact_environ())
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip()
            if UNREACHABLE.search(said) or (_offline() and "No solution found" in said):
                pytest.skip(f"no package registry reachable to build {what}'s own environment: "
                            f"{said.splitlines()[-1]}")
            raise AssertionError(f"{what}'s declared packages do not install:\n{said[-3000:]}")
        return python


def _offline() -> bool:
    """uv told to stay off the network: what the registry holds was not asked, only local indexes and the cache,
    so a version they lack is no finding about the artifact."""
    return os.environ.get("UV_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def missing_modules(python: Path, modules: set[str]) -> list[str]:
    """Which of `modules` the environment of `python` cannot import (found by name, not run)."""
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    done = subprocess.run([str(python), "-I", "-c", code, *sorted(modules)], capture_output=True, text=True, check=True,
                          env=artifact_environ())
    return done.stdout.split()
