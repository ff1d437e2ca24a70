"""The verdict the Overview leads with, as a table and two charts, with the sentences behind them.

`matrix_verdict(path, matrix)` reads one matrix as `runner verdict` does and returns `MatrixVerdict`: `table`
(one row per question: the winner with its test accuracy and interval, whom it beats, who ties, the
detectable difference, the deployment pick and its figures), `points` (one row per configuration and
question: its test accuracy, interval and call, for the chart), `curve` (each question's detectable
difference against test-set size, its own size marked: the planner's curve) and `paragraphs` (the
sentences, `vjepa_core.analysis.verdict_text`). `matrix_options` lists the matrices among the shown runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.analysis.planning import detectable_curve as planned_curve
from vjepa_core.analysis.verdict import TIED, WORSE, Verdict, left_out_runs, matrix_verdicts
from vjepa_core.analysis.verdict_text import answer_text, left_out_of_all, left_out_sentence, question_text
from vjepa_core.store import warehouse as wh
from vjepa_core.store.matrix_results import matrix_run_ids, scored_runs

HOW = ("Chosen on validation (mean over seeds), reported on test with its 95% interval (t over seeds; with one "
       "seed, Wilson over the test videos). Every other configuration is tested against the winner on the same "
       "test videos: exact McNemar per seed, combined over seeds by an exact sign-flip test over videos, "
       "Holm-corrected within the question; 'tied' means not distinguishable with this test set. The deployment "
       "pick is the cheapest of the winner and the configurations tied with it (trainable parameters, then release "
       "size, then CPU ms per clip where measured). "
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


@dataclass(frozen=True)
class MatrixVerdict:
    table: pd.DataFrame
    points: pd.DataFrame
    curve: pd.DataFrame
    paragraphs: list[tuple[str, str]]


# Test-set sizes the detectable-difference curve is drawn at (each question's own size is added).
CURVE_SIZES = (25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600)


def matrix_verdict(path: str | Path, matrix: dict[str, Any]) -> MatrixVerdict:
    spec = matrix.get("spec")
    matrix = {**matrix, "spec": json.loads(spec) if isinstance(spec, str) else spec}
    runs, predictions = scored_runs(path, matrix_run_ids(path, matrix))
    found = matrix_verdicts(runs, predictions)
    rest = left_out_of_all(found, left_out_runs(runs)) if found else []
    paragraphs = [(question_text(v), answer_text(v)) for v in found] + ([("", left_out_sentence(rest))] if rest else [])
    return MatrixVerdict(verdict_table(found), verdict_points(found), detectable_curve(found), paragraphs)


TABLE_COLUMNS = ["question", "winner", "test_acc", "ci_low", "ci_high", "beats", "ties", "detectable",
                 "test_videos", "deployment_pick", "pick_trainable_params", "pick_release_mb", "pick_cpu_ms"]


def verdict_table(found: list[Verdict]) -> pd.DataFrame:
    """One row per question (`TABLE_COLUMNS`); `detectable` is the minimum detectable difference (a share; NaN:
    nothing detectable), `beats` and `ties` name the configurations."""
    rows = []
    for verdict in found:
        test, pick = verdict.winner.config.test, verdict.deployment
        costs = pick.entry.config.costs
        rows.append({
            "question": question_text(verdict), "winner": verdict.winner.label, "test_acc": test["mean"],
            "ci_low": test["ci_low"], "ci_high": test["ci_high"],
            "beats": ", ".join(e.label for e in verdict.others if e.verdict == WORSE) or "-",
            "ties": ", ".join(e.label for e in verdict.others if e.verdict == TIED) or "-",
            "detectable": verdict.min_detectable_difference, "test_videos": verdict.test_videos,
            "deployment_pick": pick.entry.label + ("" if pick.is_winner else " (not the winner)"),
            "pick_trainable_params": costs.trainable_params, "pick_release_mb": costs.release_bytes / 1e6,
            "pick_cpu_ms": costs.cpu_ms})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"detectable": "float64"})


def verdict_points(found: list[Verdict]) -> pd.DataFrame:
    """One row per (question, configuration): question, config, call (chosen, worse, tied, better, untested),
    test_acc, ci_low, ci_high, interval, p_holm, deployment_pick (bool)."""
    rows = []
    for verdict in found:
        pick = verdict.deployment.entry.config.config_id
        for entry in (verdict.winner, *verdict.others):
            test = entry.config.test
            rows.append({"question": question_text(verdict), "config": entry.label, "call": entry.verdict,
                         "test_acc": test["mean"], "ci_low": test["ci_low"], "ci_high": test["ci_high"],
                         "interval": test["interval"], "p_holm": entry.p_holm,
                         "deployment_pick": entry.config.config_id == pick})
    return pd.DataFrame(rows, columns=["question", "config", "call", "test_acc", "ci_low", "ci_high", "interval",
                                       "p_holm", "deployment_pick"])


def detectable_curve(found: list[Verdict], sizes: tuple[int, ...] = CURVE_SIZES) -> pd.DataFrame:
    """Per question with a tested comparison: its minimum detectable difference (points) at each test-set size
    (`analysis.planning.detectable_curve`, the verdict's own power function), `current` marking its own size."""
    rows, cache = [], {}
    for verdict in found:
        tested = sum(entry.test is not None for entry in verdict.others)
        if not tested or not verdict.test_videos:
            continue
        grid = sorted({*sizes, verdict.test_videos})
        key = (round(verdict.disagreement, 6), tested, tuple(grid))
        if key not in cache:
            cache[key] = planned_curve(verdict.disagreement, tested, grid)
        for size, mdd in zip(grid, cache[key], strict=True):
            rows.append({"question": question_text(verdict), "test_videos": size,
                         "detectable_points": None if mdd is None else 100 * mdd,
                         "current": size == verdict.test_videos})
    return pd.DataFrame(rows, columns=["question", "test_videos", "detectable_points", "current"]).astype(
        {"detectable_points": "float64"})
