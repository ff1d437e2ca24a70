"""What the warehouse holds about one run, for its model card: read once (`read_evidence`: the run's rows and
those of its matrix, as `runner verdict` reads them), then pure functions over it: the accuracy with its
Wilson interval, chance level and binomial p (`accuracy_figures`), and the run's place among its matrix's
configurations with the matrix's verdict (`matrix_place`). An unknown or unsuccessful run is a `UserError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.analysis.configurations import with_configurations
from vjepa_core.analysis.stats import run_chance_test, wilson_interval
from vjepa_core.analysis.verdict import Verdict, matrix_verdicts, verdicts_of_run
from vjepa_core.errors import UserError
from vjepa_core.store.matrix_results import find_matrix, matrix_run_ids, scored_runs
from vjepa_core.store.warehouse import Warehouse

SPLIT = "test"


@dataclass(frozen=True)
class Evidence:
    run: dict[str, Any]
    class_metrics: pd.DataFrame   # test rows: class_name, precision, recall, f1, support
    confusion: pd.DataFrame       # test rows: true_class, pred_class, count
    predictions: pd.DataFrame     # test rows: video, true_class, pred_class, confidence, correct
    matrix_runs: pd.DataFrame     # every run of the run's matrix, this one and failed ones included (empty: none)
    matrix_predictions: pd.DataFrame  # their test predictions, with run_id

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.run["spec"])


@dataclass(frozen=True)
class AccuracyFigures:
    accuracy: float
    correct: int
    total: int
    ci_low: float
    ci_high: float
    chance: float
    p_value: float  # one-sided exact binomial test against `chance`


@dataclass(frozen=True)
class MatrixPlace:
    matrix_id: str
    run_id: str
    configurations: pd.DataFrame  # one row per configuration with a successful run: config_id, config (its
    #   label), strategy, model, videos_per_class, seeds, val_acc, test_acc (means over seeds), run_ids,
    #   this (bool: this run's), chosen (bool: chosen on validation in a "which configuration" question)
    verdicts: list[Verdict]       # the questions this run's configuration competes in (its own setting's first)


def read_evidence(warehouse: Path, run_id: str) -> Evidence:
    """Every row the card needs, read from `warehouse`; a run that cannot be released is a `UserError`."""
    if not Path(warehouse).is_file():
        raise UserError(f"no warehouse at {warehouse}: pass --warehouse (or VJEPA_WAREHOUSE)")
    store = Warehouse(warehouse)
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"run {run_id!r} is not in {warehouse} (runner list shows its runs)")
    if run["status"] != "success":
        error = (run.get("error") or "no error recorded").splitlines()[0]
        raise UserError(f"run {run['run_id']} did not succeed (status {run['status']}: {error}): nothing to release")
    tables = {name: _test_rows(store.table(name, run["run_id"])) for name in ("class_metrics", "confusion",
                                                                                "predictions")}
    matrix_runs, matrix_predictions = _matrix(store, run)
    return Evidence(run, tables["class_metrics"], tables["confusion"], tables["predictions"], matrix_runs,
                    matrix_predictions)


def _test_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["split"] == SPLIT].reset_index(drop=True)


def _matrix(store: Warehouse, run: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs of the run's matrix and their test predictions, as `runner verdict` reads them."""
    if not run.get("matrix_id"):
        return pd.DataFrame(), pd.DataFrame()
    try:
        matrix = find_matrix(store.path, run["matrix_id"])
    except UserError:  # rows written without their matrix's row: the runs that name it
        matrix = {"matrix_id": run["matrix_id"]}
    return scored_runs(store.path, matrix_run_ids(store.path, matrix))


def accuracy_figures(evidence: Evidence) -> AccuracyFigures:
    """The warehouse's test accuracy with its Wilson interval and chance test (`stats.run_chance_test`)."""
    chance = run_chance_test(evidence.run, evidence.class_metrics)
    if chance is None:
        raise UserError(f"run {evidence.run_id} has no test scores in the warehouse: nothing to report")
    low, high = wilson_interval(chance.correct, chance.total)
    return AccuracyFigures(float(evidence.run["test_acc"]), chance.correct, chance.total, float(low), float(high),
                        chance.chance, chance.p_value)


def configuration_name(row: pd.Series | dict[str, Any], *, with_model: bool) -> str:
    name = str(row["strategy"])
    return f"{name} on {Path(str(row['model'])).name.removeprefix('preset:')}" if with_model else name


def matrix_place(evidence: Evidence) -> MatrixPlace | None:
    """Where the run stands among its matrix's configurations (None: it ran alone, or alone in its matrix)."""
    runs = evidence.matrix_runs
    if runs.empty or len(runs) < 2:
        return None
    verdicts = matrix_verdicts(runs, evidence.matrix_predictions)
    succeeded = with_configurations(runs[runs["status"] == "success"])  # the one grouping key
    configurations = (succeeded.groupby("config_id", sort=False)
                      .agg(config=("config", "first"), strategy=("strategy", "first"), model=("model", "first"),
                           videos_per_class=("videos_per_class", "first"), seeds=("seed", "nunique"),
                           val_acc=("best_val_acc", "mean"), test_acc=("test_acc", "mean"),
                           run_ids=("run_id", list))
                      .reset_index())
    configurations["this"] = [evidence.run_id in ids for ids in configurations["run_ids"]]
    chosen = {v.winner.config.config_id for v in verdicts if v.question.kind == "configuration"}
    configurations["chosen"] = configurations["config_id"].isin(chosen)
    return MatrixPlace(str(evidence.run["matrix_id"]), evidence.run_id, configurations,
                       verdicts_of_run(verdicts, evidence.run_id))


def size_label(videos_per_class: Any) -> str:
    """Column heading of a data size: the training videos per class, or "all"."""
    if videos_per_class is None or pd.isna(videos_per_class):
        return "all"
    return str(int(videos_per_class))
