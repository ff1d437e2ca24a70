"""`release_command(run_id, out, ...)`: the `runner release` line for a run, as `runner show`, the dashboard's run
page and the model card print it. Imports nothing heavy (no torch): the dashboard's pages load it."""

from __future__ import annotations

import shlex


def release_command(run_id: str, out: str = "OUT", *, dtype: str = "fp32", adapter_only: bool = False,
                    space: bool = False, warehouse: str | None = None) -> str:
    parts = ["runner", "release", run_id, shlex.quote(out)]
    if dtype != "fp32":
        parts += ["--dtype", dtype]
    if adapter_only:
        parts.append("--adapter-only")
    if space:
        parts.append("--space")
    if warehouse is not None:
        parts += ["--warehouse", shlex.quote(warehouse)]
    return " ".join(parts)
