"""Where a matrix's runs execute (this process, or Ray tasks) and the driver that records them.

Executors share one interface: `submit(spec, data) -> future`, then `as_completed()` yields
`(spec, RunRecord)` pairs as runs finish. They never touch the warehouse: `run_matrix`, the driver,
is its only writer. It writes each record in one transaction as it arrives, between runs, and
holds no connection while a run trains, so the dashboard can read at any moment and sees each run
whole or not at all. A killed driver (even `kill -9`) loses at most the runs in flight; starting
it again skips every run_id that already succeeded.

`LocalExecutor` runs lazily, one run at a time, inside `as_completed()`; `RayExecutor` sends each
run to a Ray task (`num_gpus=gpus_per_run`) that calls `run_and_catch` and returns the record.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from runner.execute import run_and_catch
from runner.matrix import MatrixSpec, data_key
from vjepa_core.errors import UserError
from vjepa_core.experiment import REPO_ROOT, PreparedData, failed_record, prepare_data
from vjepa_core.models import load_config
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.warehouse import RunRecord, Warehouse

Completed = tuple[RunSpec, RunRecord]


class Executor(Protocol):
    def submit(self, spec: RunSpec, data: PreparedData | None = None) -> Any: ...
    def as_completed(self) -> Iterator[Completed]: ...
    def close(self) -> None: ...


class LocalExecutor:
    """Runs in this process, in submission order, when `as_completed()` asks for the next one."""

    def __init__(self, results: Path, options: ExecOptions) -> None:
        self.results, self.options = Path(results), options
        self._queue: deque[tuple[RunSpec, PreparedData | None, Future]] = deque()

    def submit(self, spec: RunSpec, data: PreparedData | None = None) -> Future:
        future: Future = Future()
        self._queue.append((spec, data, future))
        return future

    def as_completed(self) -> Iterator[Completed]:
        while self._queue:
            spec, data, future = self._queue.popleft()
            record = run_and_catch(spec, self.results, self.options, data)
            future.set_result(record)
            yield spec, record

    def close(self) -> None:
        self._queue.clear()


def _ray_task(spec: dict[str, Any], results: str, options: ExecOptions, data: PreparedData | None) -> RunRecord:
    # Runs on a Ray worker: rebuild the spec there (a plain dict travels well) and return the rows.
    return run_and_catch(RunSpec.from_dict(spec), Path(results), options, data)


class RayExecutor:
    """One Ray task per run; the driver collects records in completion order.

    Connects to `address` (or starts a local Ray) unless Ray is already initialised. On a remote
    cluster the workers get the repo's packages through `runtime_env.py_modules`; locally the
    editable install already makes them importable.
    """

    def __init__(self, results: Path, options: ExecOptions, *, address: str | None = None,
                 gpus_per_run: float = 0, cpus_per_run: float = 1) -> None:
        try:
            import ray
        except ImportError as exc:
            raise UserError("--executor ray needs Ray: pip install 'ray[default]'") from exc
        self._ray, self._owns = ray, False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, runtime_env=_runtime_env(address),
                     log_to_driver=False)
            self._owns = True
        # Progress bars from workers would interleave in the driver's terminal: the driver shows one.
        self.results, self.options = Path(results), dataclasses.replace(options, progress=False)
        self._remote = ray.remote(_ray_task).options(num_gpus=gpus_per_run, num_cpus=cpus_per_run, max_retries=1)
        self._pending: dict[Any, tuple[RunSpec, datetime]] = {}

    def submit(self, spec: RunSpec, data: PreparedData | None = None) -> Any:
        ref = self._remote.remote(spec.to_dict(), str(self.results), self.options, data)
        self._pending[ref] = (spec, datetime.now())
        return ref

    def as_completed(self) -> Iterator[Completed]:
        while self._pending:
            done, _ = self._ray.wait(list(self._pending), num_returns=1)
            spec, started = self._pending.pop(done[0])
            try:
                record = self._ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a worker that died is a failed run, not a dead matrix
                record = failed_record(spec, self.options, started, exc)
            yield spec, record

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns:
            self._ray.shutdown()


def _runtime_env(address: str | None) -> dict[str, Any] | None:
    if address in (None, "local"):
        return None
    return {"py_modules": [str(REPO_ROOT / "vjepa_core"), str(REPO_ROOT / "runner")]}


def check_executor(kind: str, *, address: str | None = None, gpus_per_run: float = 0,
                   cpus_per_run: float = 1) -> None:
    """Bad executor flags are a UserError before any work (no Ray needed to find out)."""
    if kind not in ("local", "ray"):
        raise UserError(f"--executor: expected local or ray, got {kind!r}")
    if kind == "local" and (address is not None or gpus_per_run):
        raise UserError("--ray-address and --gpus-per-run need --executor ray")
    if gpus_per_run < 0 or cpus_per_run <= 0:
        raise UserError("--gpus-per-run must be >= 0 and --cpus-per-run > 0")


def make_executor(kind: str, results: Path, options: ExecOptions, *, address: str | None = None,
                  gpus_per_run: float = 0, cpus_per_run: float = 1) -> Executor:
    check_executor(kind, address=address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)
    if kind == "local":
        return LocalExecutor(results, options)
    return RayExecutor(results, options, address=address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)


# -- the driver ---------------------------------------------------------------------------------


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
        failed = set(store.runs(status="failed")["run_id"]) & set(ids)
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
    bar = tqdm(total=len(outcome.run_ids), initial=len(outcome.run_ids) - len(specs), desc="matrix", unit="run",
               position=0, disable=not progress, dynamic_ncols=True)
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
            if progress:
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
