"""Where a matrix's runs execute: this process (`LocalExecutor`) or Ray tasks (`RayExecutor`).

An executor takes a group of runs trained side by side (`submit`) and hands back the `(spec, RunRecord)` pairs
of the next group to finish (`next_completed`); `capacity` says how many groups it trains at once, so that the
driver claims runs only when a slot is free. Executors never touch the warehouse: the driver records what
they return.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from runner.orchestration.execute import run_group_and_catch
from vjepa_core.errors import UserError
from vjepa_core.paths import PACKAGE_PARENT
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.warehouse import RunRecord
from vjepa_core.training.experiment import PreparedData, failed_run_record

Completed = tuple[RunSpec, RunRecord]


class Executor(Protocol):
    @property
    def capacity(self) -> int: ...
    def submit(self, group: list[RunSpec], data: PreparedData | None = None) -> Any: ...
    def next_completed(self) -> list[Completed]: ...
    def close(self) -> None: ...


class LocalExecutor:
    """Runs in this process, in submission order, when `next_completed()` asks for the next group."""

    def __init__(self, results: Path, options: ExecOptions) -> None:
        self.results, self.options = Path(results), options
        self._queue: deque[tuple[list[RunSpec], PreparedData | None, Future]] = deque()

    def submit(self, group: list[RunSpec], data: PreparedData | None = None) -> Future:
        future: Future = Future()
        self._queue.append((group, data, future))
        return future

    capacity = 1

    def next_completed(self) -> list[Completed]:
        group, data, future = self._queue.popleft()
        records = run_group_and_catch(group, self.results, self.options, data)
        future.set_result(records)
        return list(zip(group, records, strict=True))

    def close(self) -> None:
        self._queue.clear()


def _ray_task(group: list[dict[str, Any]], results: str, options: ExecOptions, data: PreparedData | None
              ) -> list[RunRecord]:
    # Runs on a Ray worker: rebuild the specs there (plain dicts travel well) and return the rows.
    return run_group_and_catch([RunSpec.from_dict(spec) for spec in group], Path(results), options, data)


class RayExecutor:
    """One Ray task per group of runs; the driver collects records in completion order.

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
        self._cpus, self._gpus = cpus_per_run, gpus_per_run
        self._pending: dict[Any, tuple[list[RunSpec], datetime]] = {}

    def submit(self, group: list[RunSpec], data: PreparedData | None = None) -> Any:
        ref = self._remote.remote([spec.to_dict() for spec in group], str(self.results), self.options, data)
        self._pending[ref] = (group, datetime.now())
        return ref

    @property
    def capacity(self) -> int:
        """Groups of runs the cluster can train at once with these reservations (at least 1)."""
        free = self._ray.cluster_resources()
        slots = [free.get("CPU", 1) / self._cpus]
        if self._gpus:
            slots.append(free.get("GPU", 0) / self._gpus)
        return max(1, int(min(slots)))

    def next_completed(self) -> list[Completed]:
        done, _ = self._ray.wait(list(self._pending), num_returns=1)
        group, started = self._pending.pop(done[0])
        try:
            records = self._ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - a worker that died is failed runs, not a dead matrix
            records = [failed_run_record(spec, self.options, started, exc) for spec in group]
        return list(zip(group, records, strict=True))

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns:
            self._ray.shutdown()


def _runtime_env(address: str | None) -> dict[str, Any] | None:
    if address in (None, "local"):
        return None
    return {"py_modules": [str(PACKAGE_PARENT / "vjepa_core"), str(PACKAGE_PARENT / "runner")]}


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
