"""Execute run specs and record them (in the warehouse, through its claims): the driver side, not the executors.

`execute_one` checks the input first (a bad spec, folder or model raises `UserError` and writes
nothing), skips a spec that already succeeded unless forced, claims it (`vjepa_core.store.claims`:
a run that another live process trains raises `RunningElsewhere`), runs it, and records the outcome
and releases the claim in one transaction: a run that raises leaves a `failed` row with its error,
never half a run.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from vjepa_core.errors import UserError, WriteFailed
from vjepa_core.models import check_run_model
from vjepa_core.models.device import resolve_device, resolve_precision
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.claims import BUSY, DONE, Claims, RunningElsewhere
from vjepa_core.store.warehouse import RunRecord, Warehouse
from vjepa_core.training.experiment import Paths, PreparedData, failed_run_record, prepare_data, run_experiments

log = logging.getLogger(__name__)


def preflight(spec: RunSpec, results: Path, options: ExecOptions) -> PreparedData:
    """Everything a user can get wrong, checked before any work: device, model, data, splits."""
    resolve_precision(spec.precision, resolve_device(options.device))
    check_run_model(spec)
    return prepare_data(spec, results, options)


def execute_one(spec: RunSpec, results: Path, warehouse: Path, options: ExecOptions, *,
                force: bool = False) -> dict[str, Any]:
    """Run `spec` unless it succeeded already; raises `RunningElsewhere` if a live process trains it."""
    store = Warehouse(warehouse)
    if not force and spec.run_id in store.completed_run_ids([spec.run_id]):
        log.warning("run %s already succeeded: skipped (use --force to run it again)", spec.run_id)
        return store.get_run(spec.run_id)
    data = preflight(spec, results, options)
    with Claims(store, command="run", force=force) as claims:
        verdict = claims.claim(spec.run_id, strategy=spec.strategy, matrix_id=options.matrix_id)
        if verdict.kind == BUSY:
            assert verdict.holder is not None
            raise RunningElsewhere(spec.run_id, verdict.holder)
        if verdict.kind == DONE:  # another process recorded it while we checked the input
            return store.get_run(spec.run_id)
        record = run_and_catch(spec, results, options, data)
        claims.record(record)
    return record.run


def run_and_catch(spec: RunSpec, results: Path, options: ExecOptions, data: PreparedData | None = None
                  ) -> RunRecord:
    """Run one spec; any exception becomes a failed record instead of escaping."""
    return run_group_and_catch([spec], results, options, data)[0]


def run_group_and_catch(specs: list[RunSpec], results: Path, options: ExecOptions,
                        data: PreparedData | None = None) -> list[RunRecord]:
    """Run one group of `joint_groups` side by side; an exception fails every run of the group, with its message."""
    started = datetime.now()
    try:
        return run_experiments(specs, Paths(results), options, data)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a run's failure is data, recorded with its message
        if not isinstance(exc, UserError | WriteFailed):  # those say all in one line: no traceback
            log.exception("run(s) %s failed", ", ".join(spec.run_id for spec in specs))
        return [failed_run_record(spec, options, started, exc) for spec in specs]
