"""The verdict the Overview leads with: which matrices the shown runs belong to, and each one's verdict.

- `matrix_options(runs, matrices) -> options`: the matrices that have runs among `runs`, newest first, with a
  `label` ("default (3f2a9c01), 13 run(s)"); a `matrix_id` with no `matrices` row (runs recorded by hand)
  still counts, labelled by its id.
- `load_matrices(path) -> matrices`: every `matrices` row (id, name, spec, started_at).
- `matrix_paragraphs(path, matrix) -> [(question, answer)]`: the verdict of one matrix as the runner prints
  it (`vjepa_core.analysis.verdict_text`: the same sentences), one pair per question, then the runs left out
  of every question as `("", sentence)`. An empty list: nothing to compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.analysis.verdict import left_out_runs, matrix_verdicts
from vjepa_core.analysis.verdict_text import answer_text, left_out_of_all, left_out_sentence, question_text
from vjepa_core.store import warehouse as wh
from vjepa_core.store.matrix_results import matrix_run_ids, scored_runs

HOW = ("Chosen on validation (mean over seeds), reported on test with its 95% interval (t over seeds; with one "
       "seed, Wilson over the test videos). Every other configuration is tested against the winner on the same "
       "test videos: exact McNemar per seed, combined over seeds by an exact sign-flip test over videos, "
       "Holm-corrected within the question; 'tied' means not distinguishable with this test set. "
       "`runner verdict MATRIX --json` gives every number.")


def load_matrices(path: str | Path) -> pd.DataFrame:
    with wh.read_connection(path) as conn:
        return conn.execute("SELECT matrix_id, name, spec, started_at FROM matrices").df()


def matrix_options(runs: pd.DataFrame, matrices: pd.DataFrame) -> pd.DataFrame:
    counts = runs.dropna(subset=["matrix_id"]).groupby("matrix_id").agg(runs=("run_id", "count"),
                                                                         newest=("started_at", "max"))
    options = counts.reset_index().merge(matrices[["matrix_id", "name", "started_at"]], on="matrix_id", how="left")
    options["when"] = options["started_at"].fillna(options["newest"])
    options = options.sort_values(["when", "matrix_id"], ascending=[False, True], na_position="last")
    options["label"] = [f"{name if isinstance(name, str) else matrix_id} ({matrix_id[:8]}), {n} run(s)"
                        for name, matrix_id, n in zip(options["name"], options["matrix_id"], options["runs"],
                                                      strict=True)]
    return options[["matrix_id", "name", "label", "runs"]].reset_index(drop=True)


def matrix_paragraphs(path: str | Path, matrix: dict[str, Any]) -> list[tuple[str, str]]:
    spec = matrix.get("spec")
    matrix = {**matrix, "spec": json.loads(spec) if isinstance(spec, str) else spec}
    runs, predictions = scored_runs(path, matrix_run_ids(path, matrix))
    verdicts = matrix_verdicts(runs, predictions)
    if not verdicts:
        return []
    rest = left_out_of_all(verdicts, left_out_runs(runs))
    return [(question_text(v), answer_text(v)) for v in verdicts] + ([("", left_out_sentence(rest))] if rest else [])
