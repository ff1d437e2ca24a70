"""One matrix's results, read back for its verdict (`runner verdict`, the matrix summary, the dashboard): the
matrix row by id, prefix or name, the run ids it recorded (a run another matrix ran first included), and
`scored_runs(path, run_ids) -> (runs, predictions)` from one read-only snapshot, what
`vjepa_core.analysis.verdict.matrix_verdicts` takes. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.errors import UserError
from vjepa_core.store.warehouse import read_connection


def find_matrix(path: str | Path, wanted: str | None = None) -> dict[str, Any]:
    with read_connection(path) as conn:
        matrices = conn.execute("SELECT * FROM matrices ORDER BY started_at DESC NULLS LAST, matrix_id").df()
    if matrices.empty:
        raise UserError(f"no matrix in {path}: run one first (runner run-matrix, or runner sweep SPEC)")
    if wanted is None:
        return _row(matrices.iloc[0])
    for rows in (matrices[matrices["matrix_id"] == wanted], matrices[matrices["name"] == wanted]):
        if not rows.empty:
            return _row(rows.iloc[0])  # the newest matrix of that name
    prefixed = matrices[matrices["matrix_id"].str.startswith(wanted)]
    if len(prefixed) == 1:
        return _row(prefixed.iloc[0])
    if len(prefixed) > 1:
        raise UserError(f"matrix id prefix {wanted!r} is ambiguous in {path}: matches "
                        f"{', '.join(prefixed['matrix_id'].head(5))}")
    known = ", ".join(f"{row.name} ({row.matrix_id})" for row in matrices.head(5).itertuples())
    raise UserError(f"no matrix {wanted!r} in {path} (newest: {known}; runner list shows runs)")


def _row(row: pd.Series) -> dict[str, Any]:
    matrix = row.to_dict()
    if isinstance(matrix.get("spec"), str):
        matrix["spec"] = json.loads(matrix["spec"])
    return matrix


def matrix_run_ids(path: str | Path, matrix: dict[str, Any]) -> list[str]:
    recorded = (matrix.get("spec") or {}).get("run_ids")
    if recorded:
        return [str(run_id) for run_id in recorded]
    with read_connection(path) as conn:  # a row written before matrices recorded their run ids
        rows = conn.execute("SELECT run_id FROM runs WHERE matrix_id = ? ORDER BY started_at NULLS LAST, run_id",
                            [matrix["matrix_id"]]).fetchall()
    return [row[0] for row in rows]


def scored_runs(path: str | Path, run_ids: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = list(run_ids)
    with read_connection(path) as conn:
        runs = conn.execute("SELECT * FROM runs WHERE list_contains(?::VARCHAR[], run_id) "
                            "ORDER BY started_at NULLS LAST, run_id", [ids]).df()
        predictions = conn.execute("SELECT run_id, split, video, true_class, pred_class, correct FROM predictions "
                                   "WHERE split = 'test' AND list_contains(?::VARCHAR[], run_id) "
                                   "ORDER BY run_id, video", [ids]).df()
    return runs, predictions
