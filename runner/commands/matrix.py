"""`runner run-matrix`, `runner sweep` and `runner compare`: experiments at scale, and whether they differ.

The matrix summary and `compare` group runs into configurations as the dashboard does
(`vjepa_core.analysis.configurations`): a configuration is a spec without its seed.

Exit codes: 0 every run of the matrix succeeded, 1 some failed (the summary says how many),
2 bad input (one line, nothing written), 130 interrupted (the matrix is marked `interrupted`;
run the same command again to finish it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from runner.app import app, exec_options, existing_warehouse, with_exec_options
from runner.options import (
    ResultsOption,
    WarehouseOption,
    fail,
    keyword,
    option_group,
    stdout_console,
    user_errors,
    with_spec_options,
)
from runner.output import fmt, pct
from vjepa_core.paths import results_path, warehouse_path
from vjepa_core.spec import ExecOptions, reads_option

SpecArgument = typer.Argument(None, help="Matrix spec YAML (see experiments/README.md); default: the built-in "
                              "study (experiments/default.yaml).")


@dataclass(frozen=True)
class Launch:
    """How a matrix is driven (--force, --retry-failed, --dry-run) and where its runs execute (--executor ...)."""

    force: bool
    retry_failed: bool
    dry_run: bool
    executor: str
    ray_address: str | None
    gpus_per_run: float
    cpus_per_run: float


LAUNCH_PARAMETERS = [
    keyword("force", bool, typer.Option(False, "--force", help="Run every run again, even those that already "
                                        "succeeded.")),
    keyword("retry_failed", bool, typer.Option(False, "--retry-failed", help="Run again the runs that failed in an "
                                               "earlier invocation (by default they are skipped: the same spec "
                                               "fails the same way).")),
    keyword("dry_run", bool, typer.Option(False, "--dry-run", help="List the planned runs and whether each is "
                                          "done; run nothing.")),
    keyword("executor", str, typer.Option("local", "--executor", help="local (this process) or ray (one Ray task "
                                          "per run).")),
    keyword("ray_address", str | None, typer.Option(None, "--ray-address", help="Ray cluster address (default: "
                                                    "start a local Ray).")),
    keyword("gpus_per_run", float, typer.Option(0.0, "--gpus-per-run", help="GPUs each Ray task reserves "
                                                "(num_gpus).")),
    keyword("cpus_per_run", float, typer.Option(1.0, "--cpus-per-run", help="CPUs each Ray task reserves "
                                                "(num_cpus).")),
]
with_launch_options = option_group(LAUNCH_PARAMETERS, Launch, "launch")


@app.command("run-matrix")
@user_errors
@with_launch_options
@with_exec_options("joint")
@with_spec_options
def run_matrix_cmd(
    spec: Path | None = SpecArgument,
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    launch: Launch | None = None,
    execution: ExecOptions | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Run a matrix of experiments (strategies x data sizes x frames x seeds x ...), resumably.

    Completed runs are skipped, so a killed matrix finishes when started again. Run-option flags
    (--epochs 2, --data DIR, ...) are laid over the spec's base.

    Example: runner run-matrix experiments/strategies.yaml --data /videos/ucf101_subset
    """
    from runner.orchestration.matrix import load_matrix

    matrix = load_matrix(spec, overrides)
    _run(matrix, launch, execution, warehouse=warehouse, results=results)


@app.command()
@user_errors
@with_launch_options
@with_exec_options("joint")
@with_spec_options
def sweep(
    spec: Path = typer.Argument(..., help="Sweep spec YAML: axes over lr, lora_rank, ... and a phase2 block."),
    top_k: int | None = typer.Option(None, "--top-k", help="Phase 2 re-runs this many configurations, the "
                                     "best on mean validation accuracy (overrides the spec's phase2.top_k)."),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    launch: Launch | None = None,
    execution: ExecOptions | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Grid over run options, then re-run the top-k configurations by validation accuracy (phase 2).

    Example: runner sweep experiments/lora_sweep.yaml --top-k 2
    """
    from runner.orchestration.matrix import load_matrix

    matrix = load_matrix(spec, overrides)
    if top_k is not None:
        if matrix.phase2 is None:
            fail(f"--top-k: {spec} has no phase2 block saying what the top configurations re-run with")
        if top_k < 1:
            fail(f"--top-k must be at least 1, got {top_k}")
        matrix = dataclasses.replace(matrix, phase2=dataclasses.replace(matrix.phase2, top_k=top_k))
    _run(matrix, launch, execution, warehouse=warehouse, results=results, command="sweep")


@app.command()
@user_errors
def compare(
    run_a: str = typer.Argument(..., help="A run id, or a configuration id (every seed of one configuration: the "
                                "dashboard's config_id), or a unique prefix of either."),
    run_b: str = typer.Argument(..., help="Another run or configuration, scored on the same videos."),
    split: str = typer.Option("test", help="Which split's predictions to pair: test or val."),
    n_boot: int = typer.Option(2000, "--n-boot", help="Bootstrap resamples (of videos) for the interval of the "
                               "difference."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: both sides, p, the per-seed "
                                 "McNemar p-values, the difference (B - A) and its interval."),
    warehouse: Path | None = WarehouseOption,
) -> None:
    """Do two runs, or two configurations, differ beyond noise? The paired test of `runner verdict`.

    Two run ids: one pair, an exact McNemar test on the videos both scored. A configuration (the runs of one
    spec that differ only by seed) pairs its runs with the other side's by seed, and the seed pairs combine
    in an exact sign-flip test over the videos they all scored: the same function and the same p as the
    verdict's unadjusted p for that pair. The 95% interval of the difference resamples videos. Run ids are
    looked up first.
    """
    from vjepa_core.analysis.configurations import seed_pairs, with_configurations
    from vjepa_core.analysis.paired import correct_by_run, difference_interval, paired_runs
    from vjepa_core.analysis.verdict_text import comparison_line, seed_pair_line, which_test
    from vjepa_core.store.warehouse import Warehouse

    if split not in ("test", "val"):
        fail(f"--split must be test or val, got {split!r}")
    if n_boot < 100:
        fail(f"--n-boot must be at least 100, got {n_boot}")
    path = existing_warehouse(warehouse)
    store = Warehouse(path)
    runs = with_configurations(store.runs())
    sides = [_side(store, runs, given) for given in (run_a, run_b)]
    if set(sides[0].runs["run_id"]) == set(sides[1].runs["run_id"]):
        fail(f"{run_a} and {run_b} are both {sides[0].name}: name two different runs or configurations")
    seeds: list[int] = []  # none: two runs, paired whatever their seeds
    if all(side.run is not None for side in sides):
        pairs = [(str(sides[0].runs["run_id"].iloc[0]), str(sides[1].runs["run_id"].iloc[0]))]
    else:
        by_seed = seed_pairs(sides[0].runs, sides[1].runs)
        if not by_seed:
            ok = [sorted(side.runs.loc[side.runs["status"] == "success", "seed"].astype(int)) for side in sides]
            fail(f"{sides[0].name} (seeds {ok[0]}) and {sides[1].name} (seeds {ok[1]}) share no seed that "
                 "succeeded in both: nothing to pair")
        seeds, pairs = [seed for seed, _, _ in by_seed], [(a, b) for _, a, b in by_seed]
    predictions = pd.concat([store.table("predictions", run_id) for run_id in dict.fromkeys(sum(pairs, ()))])
    test = paired_runs(pairs, correct_by_run(predictions, split))
    if test is None:
        fail(f"{sides[0].name} and {sides[1].name} share no scored {split} video (different data, or a run "
             "without predictions): nothing to pair")
    interval = difference_interval(test, resamples=n_boot)
    if as_json:
        typer.echo(json.dumps({
            "a": sides[0].name, "b": sides[1].name, "split": split, "seeds": seeds, "pairs": [list(p) for p in pairs],
            "videos": test.videos, "acc_a": test.first_accuracy, "acc_b": test.second_accuracy,
            "difference": -test.difference, "interval": [-interval[1], -interval[0]], "p": test.p,
            "test": which_test(test), "p_per_seed": list(test.p_per_seed), "only_a": list(test.only_first),
            "only_b": list(test.only_second)}, indent=2))
        return
    over = f"mean over seed(s) {', '.join(map(str, seeds))}; " if seeds else ""
    typer.echo(f"{sides[0].name}: {pct(test.first_accuracy)}   {sides[1].name}: {pct(test.second_accuracy)}   "
               f"({over}{test.videos} shared {split} videos)")
    names = (sides[0].name, sides[1].name)
    for index in range(len(pairs)):
        prefix = f"seed {seeds[index]}: " if seeds else ""
        typer.echo(prefix + seed_pair_line(test, index, *names))
    typer.echo(comparison_line(test, sides[0].name, sides[1].name, interval))


@dataclass(frozen=True)
class _Side:
    """One side of `runner compare`: a run (`run` set) or the runs of a configuration."""

    name: str
    runs: pd.DataFrame
    run: dict[str, Any] | None = None


def _side(store: Any, runs: pd.DataFrame, given: str) -> _Side:
    """A run whose id is or uniquely starts with `given` (as before configurations counted), else a configuration."""
    from vjepa_core.analysis.configurations import find_configuration

    run = store.get_run(given)
    if run is not None:
        return _Side(f"{run['strategy']} ({run['run_id'][:8]})", runs[runs["run_id"] == run["run_id"]], run)
    key = find_configuration(runs, given)
    if key is None:
        fail(f"run {given!r} is not in {store.path} (nor is a configuration with that id)")
    group = runs[runs["config_id"] == key]
    return _Side(f"{group['config'].iloc[0]} ({key[:8]})", group)


# -- shared body ------------------------------------------------------------------------------------


def _run(matrix: Any, launch: Launch | None, execution: ExecOptions | None, *, warehouse: Path | None,
         results: Path | None, command: str = "run-matrix") -> None:
    from runner.orchestration.driver import DriveOptions, run_matrix
    from runner.orchestration.executors import check_executor, make_executor

    assert launch is not None, "with_launch_options passes it"
    results, warehouse = results_path(results), warehouse_path(warehouse)
    options = execution or exec_options()
    if launch.dry_run:
        _print_plan(matrix, warehouse)
        return
    make = dict(address=launch.ray_address, gpus_per_run=launch.gpus_per_run, cpus_per_run=launch.cpus_per_run)
    check_executor(launch.executor, **make)
    drive = DriveOptions(force=launch.force, retry_failed=launch.retry_failed, progress=options.progress,
                         command=command)
    # Ctrl-C and `kill` (see runner.options.user_errors) end it marked interrupted: run it again to finish.
    outcome = run_matrix(matrix, results=results, warehouse=warehouse, options=options, drive=drive,
                         executor=lambda opts: make_executor(launch.executor, results, opts, **make))
    _print_summary(matrix, outcome, warehouse)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _print_plan(matrix: Any, warehouse: Path) -> None:
    from vjepa_core.store.warehouse import Warehouse

    done = Warehouse(warehouse).completed_run_ids([s.run_id for s in matrix.runs])
    table = Table(title=f"matrix {matrix.name} ({matrix.matrix_id}): {len(matrix.runs)} run(s), {len(done)} done")
    for column in ("run_id", "strategy", "videos/class", "frames", "epochs", "lr", "wd", "lora r/alpha", "seed",
                   "done"):
        table.add_column(column, no_wrap=column in ("run_id", "strategy"))
    for s in matrix.runs:
        table.add_row(s.run_id, s.strategy, fmt(s.videos_per_class), str(s.frames_per_clip), str(s.epochs),
                      f"{s.lr:g}", f"{s.weight_decay:g}", _lora_cell(s), str(s.seed),
                      "yes" if s.run_id in done else "")
    stdout_console().print(table)
    if matrix.phase2 is not None:
        stdout_console().print(f"phase 2: the top {matrix.phase2.top_k} configuration(s) by {matrix.phase2.by} re-run "
                        f"with {matrix.phase2.overrides}")


def _lora_cell(spec: Any) -> str:
    return f"{spec.lora_rank}/{spec.lora_alpha:g}" if reads_option(spec.strategy, "lora_rank") else "-"


def _print_summary(matrix: Any, outcome: Any, warehouse: Path) -> None:
    from runner.commands.verdict import verdict_lines
    from runner.orchestration.matrix import summary_frame
    from vjepa_core.store.warehouse import Warehouse

    store = Warehouse(warehouse)
    runs = store.runs()
    runs = runs[runs["run_id"].isin(outcome.run_ids)]
    out = stdout_console()
    frame = summary_frame(runs)
    if not frame.empty:  # nothing succeeded (yet, or here): the count line below says what happened
        out.print(summary_table(frame, title=f"matrix {matrix.name} ({matrix.matrix_id}): test accuracy"))
    caption = chance_caption(runs, store.table("class_metrics"))
    if caption:
        out.print(caption)
    failed = len(outcome.failed) + len(outcome.earlier_failed)
    elsewhere = f"{len(outcome.elsewhere)} skipped (running elsewhere), " if outcome.elsewhere else ""
    line = (f"{len(outcome.run_ids)} run(s): {len(outcome.ran)} ran, {len(outcome.skipped)} skipped "
            f"(already done), {elsewhere}{failed} failed")
    if outcome.earlier_failed:
        line += f" ({len(outcome.earlier_failed)} in an earlier invocation: --retry-failed runs them again)"
    # Plain echo, not rich: these lines must never be wrapped (the command is meant to be pasted).
    typer.secho(line, fg="red" if failed else "green")
    typer.echo(f"dashboard: runner dashboard --warehouse {warehouse}")
    verdict = verdict_lines(warehouse, outcome.run_ids)
    if verdict:
        typer.echo(f"\nverdict (runner verdict {matrix.matrix_id} --json: every number):\n{verdict}")


def summary_table(frame: Any, *, title: str) -> Table:
    """Rows: configurations apart from the columns' options, i.e. the strategy (on which model, if the matrix
    has several) and what else differs (`lr=0.01`); columns: videos/class (x frames if it varies); cells:
    test acc (mean +- std over the seeds of one configuration)."""
    table = Table(title=title)
    table.add_column("strategy")
    models_vary = frame["model"].nunique() > 1
    frames_vary = frame["frames_per_clip"].nunique() > 1
    cells = list(dict.fromkeys(zip(frame["videos_per_class"], frame["frames_per_clip"], strict=True)))
    for vpc, frames in cells:
        label = "all" if pd.isna(vpc) else str(vpc)
        table.add_column(f"{label}/class" + (f", {frames} fr" if frames_vary else ""), justify="right")
    table.add_column("trainable", justify="right")
    table.add_column("s/run", justify="right")
    for (model, strategy, row), rows in frame.groupby(["model", "strategy", "row"], sort=False):
        values = {(r.videos_per_class, r.frames_per_clip): _cell(r) for r in rows.itertuples()}
        name = f"{strategy} on {str(model).removeprefix('preset:')}" if models_vary else strategy
        table.add_row(name + row.removeprefix(strategy), *[values.get(cell, "-") for cell in cells],
                      fmt(int(rows["trainable_params"].median())), f"{rows['seconds'].mean():.1f}")
    return table


def chance_caption(runs: pd.DataFrame, class_metrics: pd.DataFrame) -> str | None:
    """'chance 16.7% (...); 8 of 9 runs above it (...)' over the successful `runs`, or None."""
    from vjepa_core.analysis.stats import ALPHA, run_chance_test

    by_run = dict(tuple(class_metrics.groupby("run_id"))) if not class_metrics.empty else {}
    tests = [run_chance_test(run, by_run.get(run["run_id"], class_metrics.iloc[:0]))
             for run in runs.to_dict("records")]
    tests = [t for t in tests if t is not None]
    if not tests:
        return None
    levels = ", ".join(sorted({f"{100 * t.chance:.1f}%" for t in tests}))
    above = sum(t.p_value < ALPHA for t in tests)
    return (f"chance {levels} (always the largest test class); {above} of {len(tests)} run(s) above it "
            f"(exact binomial p < {ALPHA:g})")


def _cell(row: Any) -> str:
    if row.n > 1:
        return f"{pct(row.test_acc_mean)} ± {100 * row.test_acc_std:.1f} (n={row.n})"
    return pct(row.test_acc_mean)
