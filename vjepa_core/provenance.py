"""Which code made a result: the `git_sha` and `versions` columns every warehouse row of a run carries,
fine-tuning and pretraining alike, failed runs too. The sha is that of the checkout vjepa_core runs from, and
None from an installed wheel (a repository found elsewhere, say in the working directory, would name other
code); the versions are vjepa-lab's, Python's and those of the libraries a result depends on.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import vjepa_core
from vjepa_core.paths import PACKAGE_PARENT


def provenance_columns() -> dict[str, Any]:
    return {"git_sha": git_sha(), "versions": versions()}


def git_sha(source: Path = PACKAGE_PARENT) -> str | None:
    """HEAD of the repository whose top level is `source`, else None: only a checkout's own .git counts,
    never one of a folder around it (a virtualenv inside some project keeps its site-packages there)."""
    if not (source / ".git").exists():  # a directory, or a file in a linked worktree
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    import peft
    import torch
    import torchvision
    import transformers

    return {"vjepa_lab": vjepa_core.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}
