"""`runner plan`: how many test videos and seeds a question needs before anyone spends the compute.

Reads a finished matrix or sweep (each question's observed disagreement, comparisons, test and validation
sizes: the verdict's own figures) or stated assumptions, and asks the verdict's power function
(`vjepa_core.analysis.planning`). Exit codes: 0, or 2 for bad input (one line).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from runner.app import app, existing_warehouse
from runner.options import WarehouseOption, fail, user_errors
from vjepa_core.analysis.plan_defaults import ACCURACY, DIFFERENCES, DRAWS, SEEDS


@app.command()
@user_errors
def plan(
    matrix: str | None = typer.Argument(None, help="A matrix or sweep: its name, id or a unique id prefix (default: "
                                        "the newest one), unless --disagreement states the assumptions instead."),
    disagreement: float | None = typer.Option(None, "--disagreement", help="Share of test videos on which two "
                                              "configurations disagree (one right, one wrong), e.g. 0.2: plan from "
                                              "this instead of a matrix."),
    comparisons: int = typer.Option(1, "--comparisons", help="With --disagreement: configurations tested against "
                                    "the winner in the question (Holm's strictest step tests at 0.05 / this)."),
    difference: list[float] = typer.Option(list(100 * d for d in DIFFERENCES), "--difference",
                                           help="Accuracy difference to detect, in points (repeat the flag)."),
    seeds: list[int] = typer.Option(list(SEEDS), "--seeds", help="Seed counts to plan for (repeat the flag)."),
    test_videos: int | None = typer.Option(None, "--test-videos", help="With --disagreement: the test set you "
                                           "have now, to state what it detects."),
    val_videos: int | None = typer.Option(None, "--val-videos", help="Validation videos (default: the matrix's; "
                                          "with --disagreement, as many as the test videos needed)."),
    accuracy: float | None = typer.Option(None, "--accuracy", help="The best configuration's validation accuracy, "
                                          f"for the simulation with several comparisons (default: the matrix "
                                          f"winner's; with --disagreement, {ACCURACY:g})."),
    seed_noise: float | None = typer.Option(None, "--seed-noise", help="Share of the disagreement that changes "
                                            "from seed to seed (0: seeds buy nothing, 1: all). Default: measured "
                                            "where a question has two or more seeds, else unknown (a range)."),
    draws: int = typer.Option(DRAWS, "--draws", help="Simulated validation sets per difference (several "
                              "comparisons have no closed form)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: {\"plans\": [...]} with every "
                                 "question's assumptions, videos needed per difference and seed count, and the "
                                 "validation probabilities."),
    warehouse: Path | None = WarehouseOption,
) -> None:
    """How many test videos a question needs to detect 5 and 10 points, what extra seeds buy, and how often
    its validation set picks the truly best configuration.

    The same power function as `runner verdict`'s detectable difference: the exact McNemar test at 80% power
    and alpha 0.05 over the question's comparisons (Holm's strictest step). Validation: exact for two
    configurations, simulated (fixed seed) for more, and said so.

    Examples: runner plan default;  runner plan --disagreement 0.2 --comparisons 5 --test-videos 54
    """
    from vjepa_core.analysis.planning import Assumptions
    from vjepa_core.analysis.planning import plan as plan_question

    _check(disagreement=disagreement, comparisons=comparisons, differences=difference, seeds=seeds,
           sizes=(test_videos, val_videos), accuracy=accuracy, seed_noise=seed_noise, draws=draws)
    if disagreement is not None:
        if matrix is not None:
            fail("give a matrix or --disagreement, not both")
        noise_from = "stated" if seed_noise is not None else "not stated: --seed-noise states it"
        questions = [Assumptions(
            "stated assumptions", comparisons, disagreement, "stated", seed_noise, noise_from, test_videos,
            val_videos, ACCURACY if accuracy is None else accuracy, "assumed" if accuracy is None else "stated")]
        about: dict[str, Any] = {}
    else:
        if test_videos is not None or comparisons != 1:
            fail("--test-videos and --comparisons state assumptions: use them with --disagreement")
        questions, about = _from_matrix(matrix, warehouse, val_videos=val_videos, accuracy=accuracy,
                                        seed_noise=seed_noise)
    plans = [plan_question(q, differences=[d / 100 for d in difference], seeds=seeds, draws=draws) for q in questions]
    if as_json:
        typer.echo(json.dumps({**about, "plans": plans}, indent=2))
        return
    if about:
        typer.echo(f"matrix {about['matrix']['name']} ({about['matrix']['matrix_id']})")
    typer.echo("\n\n".join(plan_text(p) for p in plans) if plans else "No question to plan: the matrix has no two "
               "configurations tested against each other.")


def _check(*, disagreement: float | None, comparisons: int, differences: list[float], seeds: list[int],
           sizes: tuple[int | None, ...], accuracy: float | None, seed_noise: float | None, draws: int) -> None:
    if disagreement is not None and not 0 < disagreement <= 1:
        fail(f"--disagreement must be a share in (0, 1], got {disagreement}")
    if comparisons < 1:
        fail(f"--comparisons must be at least 1, got {comparisons}")
    if not differences or any(not 0 < d < 100 for d in differences):
        fail(f"--difference must be points in (0, 100), got {differences}")
    if not seeds or any(m < 1 for m in seeds):
        fail(f"--seeds must be at least 1, got {seeds}")
    if any(size is not None and size < 1 for size in sizes):
        fail("--test-videos and --val-videos must be at least 1")
    if accuracy is not None and not 0 < accuracy < 1:
        fail(f"--accuracy must be in (0, 1), got {accuracy}")
    if seed_noise is not None and not 0 <= seed_noise <= 1:
        fail(f"--seed-noise must be in [0, 1], got {seed_noise}")
    if draws < 100:
        fail(f"--draws must be at least 100, got {draws}")


def _from_matrix(matrix: str | None, warehouse: Path | None, *, val_videos: int | None, accuracy: float | None,
                 seed_noise: float | None) -> tuple[list[Any], dict[str, Any]]:
    """Each question's assumptions, read from its verdict."""
    from vjepa_core.analysis.planning import Assumptions, measured_seed_noise
    from vjepa_core.analysis.verdict import matrix_verdicts
    from vjepa_core.store.matrix_results import find_matrix, matrix_run_ids, scored_runs

    path = existing_warehouse(warehouse)
    found = find_matrix(path, matrix)
    runs, predictions = scored_runs(path, matrix_run_ids(path, found))
    questions = []
    for verdict in matrix_verdicts(runs, predictions):
        tests = [entry.test for entry in verdict.others if entry.test is not None]
        if not tests:
            continue
        measured = measured_seed_noise(tests)
        noise, noise_from = ((seed_noise, "stated") if seed_noise is not None else
                             (measured, "measured over the seed pairs") if measured is not None else
                             (None, "one seed per configuration: --seed-noise states it"))
        members = [entry.config.runs for entry in (verdict.winner, *verdict.others)]
        vals = [int(n) for runs_ in members for n in runs_["num_val"].dropna()] if "num_val" in runs else []
        questions.append(Assumptions(
            verdict.question.title, len(tests), verdict.disagreement, "observed: median over the comparisons",
            noise, noise_from, verdict.test_videos, val_videos or (int(sorted(vals)[len(vals) // 2]) if vals else None),
            accuracy if accuracy is not None else verdict.winner.config.val_acc,
            "stated" if accuracy is not None else "the winner's validation accuracy"))
    return questions, {"matrix": {"matrix_id": found["matrix_id"], "name": found["name"]}}


def plan_text(plan: dict[str, Any]) -> str:
    """One question's plan in a few lines: what holds now, then per difference the videos and seeds it needs."""
    title = plan["question"]
    lines = [f"{title[0].upper()}{title[1:]}: {plan['comparisons']} comparison(s) against the winner (alpha "
             f"{plan['alpha']:.2g}); disagreement {_pct(plan['disagreement'])} ({plan['disagreement_from']}); seed "
             f"noise {_share(plan['seed_noise'])} ({plan['seed_noise_from']})."]
    if plan["test_videos"]:
        mdd = plan["min_detectable_difference"]
        lines.append(f"  now: {plan['test_videos']} test videos detect " + (
            "no difference" if mdd is None else f"differences of {100 * mdd:.1f} points or more") + " (80% power).")
    for row in plan["differences"]:
        seeds = "; ".join(_seeds_cell(cell) for cell in row["seeds"])
        lines.append(f"  {100 * row['difference']:g} points: test videos needed: {seeds}.")
        choice = row["validation"]
        if choice:
            lines.append(f"    validation on {choice['val_videos']} videos ({choice['val_videos_from']}): the truly "
                         f"best, {100 * row['difference']:g} points ahead, comes out on top "
                         f"{_pct(choice['p_best_alone'])} of the time alone and {_pct(choice['p_best_tied'])} tied "
                         f"(the tie rule then takes the cheaper); {choice['method']}.")
    return "\n".join(lines)


def _seeds_cell(cell: dict[str, Any]) -> str:
    seeds = f"{cell['seeds']} seed{'s' if cell['seeds'] > 1 else ''}"
    if cell["range"] is not None:
        low, high = cell["range"]
        return f"{seeds} {_count(low)} to {_count(high)}"
    return f"{seeds} {_count(cell['test_videos'])}"


def _count(videos: int | None) -> str:
    return "more than 1,000,000" if videos is None else f"{videos:,}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _share(value: float | None) -> str:
    return "unknown" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
