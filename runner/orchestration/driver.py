"""The matrix driver: plans a matrix's runs, claims each before it trains, and records each as it finishes.

It claims a run only when the executor has a slot for it, so that several runner processes on one warehouse
share the work (a run a live process trains is skipped, one whose process is gone is taken over), and writes
each record with its claim released in one transaction as it arrives, holding no connection while a run
trains. A killed driver loses at most the runs in flight; started again, it skips every run that succeeded.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.orchestration.executors import Executor
from runner.orchestration.matrix import MatrixSpec, data_key
from vjepa_core.models import check_run_model
from vjepa_core.progress import progress_bar
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.claims import BUSY, CLAIMED, Claims, Verdict
from vjepa_core.store.liveness import process_started
from vjepa_core.store.warehouse import RunRecord, Warehouse
from vjepa_core.training.experiment import PreparedData, prepare_data
from vjepa_core.training.joint import joint_groups


@dataclass
class MatrixOutcome:
    """What one invocation did: every run_id of the matrix, and which ran, were skipped or failed."""

    matrix_id: str
    run_ids: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # done already (or meanwhile by another process)
    elsewhere: list[str] = field(default_factory=list)  # another live process was training them
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
    command: str = "run-matrix"  # what the claims table says this process is


def run_matrix(matrix: MatrixSpec, *, results: Path, warehouse: Path, options: ExecOptions,
               executor: Callable[[ExecOptions], Executor], drive: DriveOptions = DriveOptions()) -> MatrixOutcome:
    """Run phase 1 (and phase 2 if the spec has one), skipping finished runs; record the matrix live."""
    store = Warehouse(warehouse)
    options = dataclasses.replace(options, matrix_id=matrix.matrix_id)
    outcome = MatrixOutcome(matrix.matrix_id)
    phase1 = _plan(store, matrix.runs, drive, outcome)
    prepared = preflight(phase1, Path(results), options)  # bad input: UserError before anything is written
    pool = executor(options)
    live = _Live(store, matrix, pool, Claims(store, command=drive.command, force=drive.force), outcome,
                 progress=drive.progress)
    live.update(status="running", started_at=datetime.now())
    try:
        live.execute(joint_groups(phase1, options), prepared)
        if matrix.phase2 is not None:
            runs = store.runs()
            best = matrix.phase2_runs(runs[runs["run_id"].isin(outcome.run_ids)])
            phase2 = _plan(store, best, drive, outcome)
            prepared = preflight(phase2, Path(results), options)
            live.update(status="running")
            live.execute(joint_groups(phase2, options), prepared)
    except BaseException:
        live.update(status="interrupted", current_run_id=None)
        raise
    finally:
        pool.close()
        live.claims.close()  # Ctrl-C, SIGTERM, a full disk: what we held is free for others at once
    live.update(status="finished", current_run_id=None, finished_at=datetime.now())
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
    for spec in {(spec.model, spec.feature_layers): spec for spec in specs}.values():
        check_run_model(spec)
    return prepared


@dataclass
class _Live:
    """One invocation at work: claims runs as slots free up, records them, keeps the matrix row current."""

    store: Warehouse
    matrix: MatrixSpec
    pool: Executor
    claims: Claims
    outcome: MatrixOutcome
    progress: bool
    running: dict[str, RunSpec] = field(default_factory=dict)
    slots_used: int = 0  # groups in flight; a group of runs trained side by side takes one slot

    def execute(self, groups: list[list[RunSpec]], prepared: dict[tuple[Any, ...], PreparedData]) -> None:
        """Claim and train `groups` (`joint_groups`: runs that train side by side), a group per free slot."""
        if not groups:
            return
        queue, looked_twice = deque(groups), set()
        total = len(self.outcome.run_ids)
        bar = progress_bar(total=total, initial=total - sum(map(len, groups)), desc="matrix", unit="runs",
                           enabled=self.progress, leave=True, position=0, dynamic_ncols=True)
        with bar:
            while queue or self.running:
                while queue and self.slots_used < self.pool.capacity:
                    claimed, waiting = [], []
                    for spec in queue.popleft():
                        verdict = self.claims.claim(spec.run_id, strategy=spec.strategy,
                                                    matrix_id=self.matrix.matrix_id)
                        if verdict.kind == CLAIMED:
                            claimed.append(spec)
                        elif verdict.kind == BUSY and spec.run_id not in looked_twice:
                            looked_twice.add(spec.run_id)  # once the rest is done its process may be gone
                            waiting.append(spec)
                        else:
                            self._skip(spec, verdict, bar)
                    if waiting:
                        queue.append(waiting)
                    if claimed:
                        self.pool.submit(claimed, prepared[data_key(claimed[0])])
                        self.running.update((spec.run_id, spec) for spec in claimed)
                        self.slots_used += 1
                        self.update(status="running", current_run_id=claimed[0].run_id)
                if self.running:
                    for spec, record in self.pool.next_completed():
                        self._record(spec, record, bar)
                    self.slots_used -= 1

    def update(self, **columns: Any) -> None:
        # Every writer stamps its own process: with two processes on one matrix, the row names a live one.
        self.store.upsert_matrix({
            "matrix_id": self.matrix.matrix_id, "name": self.matrix.name, "total_runs": len(self.outcome.run_ids),
            "spec": {**self.matrix.source, "run_ids": self.outcome.run_ids}, "pid": os.getpid(),
            "pid_started": process_started(os.getpid()), "host": socket.gethostname(), **columns})

    def _record(self, spec: RunSpec, record: RunRecord, bar: Any) -> None:
        self.claims.record(record)  # one transaction: readers see this run whole or not at all
        del self.running[spec.run_id]
        self.outcome.ran.append(spec.run_id)
        if record.run.get("status") != "success":
            self.outcome.failed.append(spec.run_id)
        self.update(status="running", current_run_id=next(iter(self.running), None))
        bar.update(1)
        if self.progress or spec.run_id in self.outcome.failed:  # a failure's reason shows even with --quiet
            bar.write(_run_line(spec, record))

    def _skip(self, spec: RunSpec, verdict: Verdict, bar: Any) -> None:
        if verdict.kind == BUSY:
            assert verdict.holder is not None
            self.outcome.elsewhere.append(spec.run_id)
            line = f"- {spec.run_id} {_what(spec)}: skipped, running elsewhere ({verdict.holder.text()})"
        else:
            self.outcome.skipped.append(spec.run_id)
            line = f"- {spec.run_id} {_what(spec)}: skipped, recorded by another process meanwhile"
        bar.update(1)
        if self.progress:
            bar.write(line)


def _what(spec: RunSpec) -> str:
    return f"{spec.strategy} vpc={spec.videos_per_class or 'all'} frames={spec.frames_per_clip} seed={spec.seed}"


def _run_line(spec: RunSpec, record: RunRecord) -> str:
    run = record.run
    if run.get("status") != "success":
        return f"x {spec.run_id} {_what(spec)}: failed: {run.get('error')}"
    return f"ok {spec.run_id} {_what(spec)}: test acc {100 * run['test_acc']:.1f}% ({run['train_seconds']:.1f} s)"
