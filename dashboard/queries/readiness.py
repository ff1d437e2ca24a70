"""Can the dashboard's pages render this warehouse, and if not, why and what to run.

- `warehouse_status(path) -> Status`: ok / missing / busy / unreadable / no_schema / old / newer /
  empty / only_failed, with a friendly explanation and the command to run; never raises for a bad file.
- `Status`: that answer (`kind`, `title`, `detail`, `command`, run counts, the first errors; `ok`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from dashboard.queries.commands import command_for
from vjepa_core.errors import UserError
from vjepa_core.store import schema
from vjepa_core.store import warehouse as wh
from vjepa_core.store.locking import WarehouseBusy


@dataclass(frozen=True)
class Status:
    """What the warehouse holds, in words a user can act on; `kind == "ok"` means pages can render."""

    kind: str
    title: str
    detail: str = ""
    command: str = ""
    runs: int = 0
    succeeded: int = 0
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind == "ok"



def warehouse_status(path: str | Path) -> Status:
    """Can the pages render, and if not, why and what to run; never raises for a bad file."""
    path = Path(path)
    run_matrix = command_for("runner run-matrix", path)
    if not path.exists():
        return Status("missing", f"No warehouse at `{path}` yet.",
                      "Run an experiment matrix first; the dashboard fills in as runs finish.", run_matrix)
    try:
        version = wh.schema_version(path)
    except WarehouseBusy as error:
        return Status("busy", "The warehouse is busy; retrying.", str(error))
    except (UserError, duckdb.Error) as error:
        return Status("unreadable", f"`{path}` cannot be read.", str(error).splitlines()[0], run_matrix)
    if not version:
        return Status("no_schema", f"`{path}` holds no vjepa-lab results.",
                      "It is empty or another program's DuckDB file. Point the dashboard at a warehouse "
                      "(--warehouse / VJEPA_WAREHOUSE) or fill this one:", run_matrix)
    if version < schema.SCHEMA_VERSION:
        upgrade = f"python -c \"from vjepa_core.store.warehouse import Warehouse; Warehouse('{path}').migrate()\""
        return Status("old", f"`{path}` has schema version {version}; this dashboard reads {schema.SCHEMA_VERSION}.",
                      "The dashboard only reads, so it does not upgrade files. Any runner write upgrades it, "
                      "or upgrade it now:", upgrade)
    if version > schema.SCHEMA_VERSION:
        return Status("newer", f"`{path}` has schema version {version}, newer than this vjepa-lab reads "
                      f"({schema.SCHEMA_VERSION}).", "Upgrade vjepa-lab:", "pip install -U vjepa-lab")
    return _content_status(path, run_matrix)


def _content_status(path: Path, run_matrix: str) -> Status:
    try:
        with wh.read_connection(path) as conn:
            counts = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
            errors = conn.execute("SELECT DISTINCT error FROM runs WHERE status = 'failed' AND error IS NOT NULL "
                                  "ORDER BY error LIMIT 5").fetchall()
    except WarehouseBusy as error:
        return Status("busy", "The warehouse is busy; retrying.", str(error))
    total, succeeded = sum(counts.values()), counts.get("success", 0)
    if total == 0:
        return Status("empty", f"`{path}` has no runs yet.", "Run experiments to fill it:", run_matrix)
    if succeeded == 0:
        return Status("only_failed", f"All {total} run(s) in `{path}` failed.",
                      "Nothing to chart yet. Fix the error below, then run again:",
                      command_for("runner list --status failed", path), runs=total,
                      errors=tuple(row[0] for row in errors))
    return Status("ok", f"{succeeded} successful run(s) of {total}.", runs=total, succeeded=succeeded)
