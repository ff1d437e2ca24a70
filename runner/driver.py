"""The matrix driver: plans a matrix's runs, hands them to an executor, and records each as it finishes.

`run_matrix` is the warehouse's only writer. It writes each record in one transaction as it
arrives, between runs, and holds no connection while a run trains, so the dashboard can read at any
moment and sees each run whole or not at all. A killed driver (even `kill -9`) loses at most the
runs in flight; starting it again skips every run_id that already succeeded.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.executors import Executor
from runner.matrix import MatrixSpec, data_key
from vjepa_core.models import load_config
from vjepa_core.progress import progress_bar
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.warehouse import RunRecord, Warehouse
from vjepa_core.training.experiment import PreparedData, prepare_data


@dataclass
class MatrixOutcome:
    """What one invocation did: every run_id of the matrix, and which ran, were skipped or failed."""

    matrix_id: str
    run_ids: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    earlier_failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.earlier_failed else 0


@dataclass(frozen=True)
class DriveOptions:
    force: bool = False
    retry_failed: bool = False
    progress: bool = True


def run_matrix(matrix: MatrixSpec, *, results: Path, warehouse: Path, options: ExecOptions,
               executor: Callable[[ExecOptions], Executor], drive: DriveOptions = DriveOptions()) -> MatrixOutcome:
    """Run phase 1 (and phase 2 if the spec has one), skipping finished runs; record the matrix live."""
    store = Warehouse(warehouse)
    options = dataclasses.replace(options, matrix_id=matrix.matrix_id)
    outcome = MatrixOutcome(matrix.matrix_id)
    phase1 = _plan(store, matrix.runs, drive, outcome)
    prepared = preflight(phase1, Path(results), options)  # bad input: UserError before anything is written
    _update(store, matrix, outcome, status="running", started_at=datetime.now(), pid=os.getpid(),
            host=socket.gethostname())
    pool = executor(options)
    try:
        _execute(store, matrix, pool, phase1, prepared, outcome, progress=drive.progress)
        if matrix.phase2 is not None:
            runs = store.runs()
            best = matrix.phase2_runs(runs[runs["run_id"].isin(outcome.run_ids)])
            phase2 = _plan(store, best, drive, outcome)
            prepared = preflight(phase2, Path(results), options)
            _update(store, matrix, outcome, status="running")
            _execute(store, matrix, pool, phase2, prepared, outcome, progress=drive.progress)
    except BaseException:
        _update(store, matrix, outcome, status="interrupted", current_run_id=None)
        raise
    finally:
        pool.close()
    _update(store, matrix, outcome, status="finished", current_run_id=None, finished_at=datetime.now())
    return outcome


def _plan(store: Warehouse, specs: Any, drive: DriveOptions, outcome: MatrixOutcome) -> list[RunSpec]:
    """The specs still to run; the rest are counted as skipped (done, or failed before)."""
    specs = [s for s in specs if s.run_id not in outcome.run_ids]
    ids = [s.run_id for s in specs]
    outcome.run_ids += ids
    done = set() if drive.force else store.completed_run_ids(ids)
    failed = set()
    if not (drive.force or drive.retry_failed) and store.path.exists():
        runs = store.runs(status="failed")
        # A full disk is no property of the spec: once space is freed, the same command goes on.
        failed = set(runs.loc[runs["error_kind"] != "storage", "run_id"]) & set(ids)
    outcome.skipped += [i for i in ids if i in done or i in failed]
    outcome.earlier_failed += [i for i in ids if i in failed]
    return [s for s in specs if s.run_id not in done and s.run_id not in failed]


def preflight(specs: list[RunSpec], results: Path, options: ExecOptions) -> dict[tuple[Any, ...], PreparedData]:
    """Prepare each distinct data setting once and check each model: all bad input shows here."""
    prepared: dict[tuple[Any, ...], PreparedData] = {}
    for spec in specs:
        if data_key(spec) not in prepared:
            prepared[data_key(spec)] = prepare_data(spec, results, options)
    for model in dict.fromkeys(spec.model for spec in specs):
        load_config(model)
    return prepared


def _execute(store: Warehouse, matrix: MatrixSpec, pool: Executor, specs: list[RunSpec],
             prepared: dict[tuple[Any, ...], PreparedData], outcome: MatrixOutcome, *, progress: bool) -> None:
    if not specs:
        return
    for spec in specs:
        pool.submit(spec, prepared[data_key(spec)])
    pending = [spec.run_id for spec in specs]
    bar = progress_bar(total=len(outcome.run_ids), initial=len(outcome.run_ids) - len(specs), desc="matrix",
                       unit="runs", enabled=progress, leave=True, position=0, dynamic_ncols=True)
    _update(store, matrix, outcome, status="running", current_run_id=pending[0])
    with bar:
        for spec, record in pool.as_completed():
            store.write_run(record)  # one transaction: readers see this run whole or not at all
            pending.remove(spec.run_id)
            outcome.ran.append(spec.run_id)
            if record.run.get("status") != "success":
                outcome.failed.append(spec.run_id)
            _update(store, matrix, outcome, status="running", current_run_id=pending[0] if pending else None)
            bar.update(1)
            if progress or spec.run_id in outcome.failed:  # a failure's reason shows even with --quiet
                bar.write(_run_line(spec, record))


def _update(store: Warehouse, matrix: MatrixSpec, outcome: MatrixOutcome, **columns: Any) -> None:
    store.upsert_matrix({"matrix_id": matrix.matrix_id, "name": matrix.name, "total_runs": len(outcome.run_ids),
                         "spec": {**matrix.source, "run_ids": outcome.run_ids}, **columns})


def _run_line(spec: RunSpec, record: RunRecord) -> str:
    run = record.run
    what = f"{spec.strategy} vpc={spec.videos_per_class or 'all'} frames={spec.frames_per_clip} seed={spec.seed}"
    if run.get("status") != "success":
        return f"x {spec.run_id} {what}: failed: {run.get('error')}"
    return f"ok {spec.run_id} {what}: test acc {100 * run['test_acc']:.1f}% ({run['train_seconds']:.1f} s)"
