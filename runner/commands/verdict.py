"""`runner verdict`: which configuration a matrix or sweep chose on validation, and what its test set can say.

Also `verdict_lines(warehouse, run_ids)`, the sentences `runner run-matrix` and `runner sweep` print under
their table. Exit codes: 0 (a verdict, or a matrix with nothing to compare, said so), 2 (no warehouse,
no matrix, an unknown or ambiguous matrix: one line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from runner.app import app, existing_warehouse
from runner.options import WarehouseOption, user_errors


@app.command()
@user_errors
def verdict(
    matrix: str | None = typer.Argument(None, help="A matrix or sweep: its name, id or a unique id prefix "
                                        "(default: the newest one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: {\"verdicts\": [...]} with every "
                                 "question's winner, the others' p-values and calls, and what it could detect."),
    warehouse: Path | None = WarehouseOption,
) -> None:
    """Which configuration wins each question of a matrix, chosen on validation and reported on test.

    For each data size (and frames setting, and model) the configurations compete; for each strategy the data
    sizes (frames settings, models) compete. The winner has the best mean validation accuracy over its seeds;
    every other configuration is tested against it on the shared test videos (exact McNemar per seed,
    combined over seeds by an exact sign-flip test over videos, Holm-corrected within the question) and is
    called worse, tied or better. Each question also says the smallest difference its test set could detect
    (80% power). Failed runs are left out and named.

    Example: runner verdict default --json
    """
    from vjepa_core.analysis.verdict import left_out_runs, matrix_verdicts, verdicts_json
    from vjepa_core.analysis.verdict_text import verdicts_text
    from vjepa_core.store.matrix_results import find_matrix, matrix_run_ids, scored_runs

    path = existing_warehouse(warehouse)
    found = find_matrix(path, matrix)
    runs, predictions = scored_runs(path, matrix_run_ids(path, found))
    verdicts = matrix_verdicts(runs, predictions)
    about = {"matrix_id": found["matrix_id"], "name": found["name"], "runs": len(runs),
             "status": found.get("status")}
    left_out = left_out_runs(runs)
    if as_json:
        typer.echo(json.dumps(verdicts_json(verdicts, left_out=left_out, matrix=about), indent=2))
        return
    typer.echo(f"matrix {found['name']} ({found['matrix_id']}, {found.get('status')}): {len(runs)} run(s)")
    typer.echo(verdicts_text(verdicts, left_out) if verdicts else _nothing_to_compare(runs, left_out))


def _nothing_to_compare(runs: Any, left_out: Any) -> str:
    from vjepa_core.analysis.verdict_text import verdicts_text

    ok = int((runs["status"] == "success").sum()) if len(runs) else 0
    said = (f"No question to answer: a verdict compares two or more configurations of one setting, and this "
            f"matrix has {ok} successful run(s) that form no such pair.")
    return "\n\n".join(filter(None, [said, verdicts_text([], left_out)]))


def verdict_lines(warehouse: Path, run_ids: Sequence[str]) -> str | None:
    """The verdict of these runs in plain sentences, or None when there is nothing to compare."""
    from vjepa_core.analysis.verdict import left_out_runs, matrix_verdicts
    from vjepa_core.analysis.verdict_text import verdicts_text
    from vjepa_core.store.matrix_results import scored_runs

    runs, predictions = scored_runs(warehouse, run_ids)
    verdicts = matrix_verdicts(runs, predictions)
    return verdicts_text(verdicts, left_out_runs(runs)) if verdicts else None
