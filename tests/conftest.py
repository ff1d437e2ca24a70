"""Shared pytest fixtures, and the test tiers.

Tiers
-----
Each test carries the marker of its folder: `unit` (tests/unit: tiny models, no trained-run fixtures,
under a minute), `integration` (tests/integration: the CLI end to end), `apps` (tests/apps: dashboard
and demo), `browser` (tests/browser: headless Chromium). `pytest -m unit` runs one tier.

Datasets
--------
`synthetic_small`: a real synthetic video set (6 motion classes x 4 videos, 96x128, 40 frames,
alternating mp4/avi), generated once per test session. Treat it as read-only: tests that need to
add, break or remove files copy it into their own `tmp_path` first.

Runs
----
`trained_runs`: a warehouse + results folder filled by the real runner (3 strategies x 2 seeds on
`synthetic_small`, tiny preset, plus one failed run): what the dashboard and demo tests read.
`dashboard_runs`: a copy of that warehouse plus cheap 1-epoch runs varying data size, frames, lr and
LoRA rank, under a matrix marked running, and `runner embed`'s vectors of `synthetic_small`: every
dashboard page has something to draw.

Processes
---------
`dead_pid()`: the pid of a process that ran and was reaped (as after kill -9). `plant_claim(store, run_id,
...)`: a `claims` row as another process would have left it (by default a dead one on this machine).

Disks
-----
`small_disk(size_kib)`: a real tmpfs of that size, mounted for one test (skipped where mounting is
refused): where the disk-full tests put `--results`.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.robustness import MountRefused, SmallDisk
from vjepa_core.data.synthetic import make_synthetic

TIERS = ("unit", "integration", "apps", "browser")


def said_once(message: str) -> bool:
    """No part of an error message (between ': ' and parentheses) repeats: causes wrapped, not restated."""
    parts = [part.strip() for part in re.split(r": |\(|\)", message) if part.strip()]
    return len(parts) == len(set(parts))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


SYNTHETIC_SMALL = {"videos_per_class": 4, "height": 96, "width": 128, "num_frames": 40, "fps": 12, "seed": 0}


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder `<tmp>/synthetic/<class>/<class>_<i:03d>.<mp4|avi>` plus flip_pairs.json, synthetic.json."""
    return make_synthetic(tmp_path_factory.mktemp("datasets") / "synthetic", **SYNTHETIC_SMALL)


@dataclass(frozen=True)
class TrainedRuns:
    """A warehouse and results folder filled by the real runner (`runner.execute.execute_one`)."""

    warehouse: Path
    results: Path
    run_ids: tuple[str, ...]
    matrix_id: str


TRAINED_STRATEGIES = ("head", "pooler_head", "lora")
TRAINED_SEEDS = (0, 1)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> TrainedRuns:
    """3 strategies x 2 seeds on `synthetic_small` with the tiny preset, 2 epochs each, plus one failed run.

    Read-only for tests: copy the warehouse before writing to it.
    """
    from runner.execute import execute_one
    from vjepa_core.spec import ExecOptions, RunSpec
    from vjepa_core.store.warehouse import RunRecord, Warehouse

    root = tmp_path_factory.mktemp("trained")
    warehouse, results = root / "vjepa.duckdb", root / "results"
    options = ExecOptions(progress=False, matrix_id="fixture-matrix")
    run_ids = []
    for strategy in TRAINED_STRATEGIES:
        for seed in TRAINED_SEEDS:
            spec = RunSpec(strategy=strategy, data=str(synthetic_small), model="tiny", epochs=2, seed=seed,
                           batch_size=4, train_views=2)
            run = execute_one(spec, results, warehouse, options)
            assert run["status"] == "success", run.get("error")
            run_ids.append(run["run_id"])
    failed = RunSpec(strategy="full", data=str(synthetic_small), model="tiny", epochs=1, lr=0.5)
    Warehouse(warehouse).write_run(RunRecord(run={
        "run_id": failed.run_id, "matrix_id": "fixture-matrix", "strategy": "full", "model": "preset:tiny",
        "dataset": "synthetic", "status": "failed", "error": "RuntimeError: loss is NaN", "seed": 0,
        "spec": failed.to_dict(), "started_at": datetime.now(), "finished_at": datetime.now()}))
    return TrainedRuns(warehouse, results, tuple(run_ids), "fixture-matrix")


DASHBOARD_MATRIX = "dashboard-variety"
# head: videos per class 1 (two seeds) and 2, frames 8 and 4; lora: lr x rank, 2 x 2. All 1 epoch.
DASHBOARD_VARIETY = (
    {"strategy": "head", "videos_per_class": 1, "seed": 0}, {"strategy": "head", "videos_per_class": 1, "seed": 1},
    {"strategy": "head", "videos_per_class": 2}, {"strategy": "head", "videos_per_class": 2, "frames_per_clip": 4},
    *({"strategy": "lora", "videos_per_class": 2, "lr": lr, "lora_rank": rank}
      for lr in (1e-3, 1e-2) for rank in (4, 8)),
)


@pytest.fixture(scope="session")
def dashboard_runs(tmp_path_factory: pytest.TempPathFactory, trained_runs: TrainedRuns,
                   synthetic_small: Path) -> TrainedRuns:
    """`trained_runs`' warehouse copied, plus DASHBOARD_VARIETY run by the real runner (matrix still "running")."""
    from runner.execute import execute_one
    from vjepa_core.spec import ExecOptions, RunSpec
    from vjepa_core.store.warehouse import Warehouse

    root = tmp_path_factory.mktemp("dashboard")
    warehouse, results = root / "vjepa.duckdb", root / "results"
    shutil.copy(trained_runs.warehouse, warehouse)
    store = Warehouse(warehouse)
    store.upsert_matrix({"matrix_id": DASHBOARD_MATRIX, "name": "dashboard variety", "status": "running",
                         "total_runs": len(DASHBOARD_VARIETY) + 2, "started_at": datetime.now()})
    options = ExecOptions(progress=False, matrix_id=DASHBOARD_MATRIX)
    run_ids = []
    for overrides in DASHBOARD_VARIETY:
        spec = RunSpec.from_dict({"data": str(synthetic_small), "model": "tiny", "epochs": 1, "batch_size": 4,
                                  "train_views": 1, "frames_per_clip": 8, **overrides})
        run = execute_one(spec, results, warehouse, options)
        assert run["status"] == "success", run.get("error")
        run_ids.append(run["run_id"])
        store.upsert_matrix({"matrix_id": DASHBOARD_MATRIX, "current_run_id": run["run_id"]})
    # Vectors for the Embeddings page, written by the real `runner embed`.
    from typer.testing import CliRunner

    from runner.cli import app

    embedded = CliRunner().invoke(app, ["embed", str(synthetic_small), "--model", "tiny", "--warehouse", str(warehouse),
                                        "--results", str(results), "--quiet"])
    assert embedded.exit_code == 0, embedded.output
    return TrainedRuns(warehouse, results, (*trained_runs.run_ids, *run_ids), DASHBOARD_MATRIX)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], SmallDisk]]:
    """`small_disk(size_kib)` mounts a fresh tmpfs of that size under tmp_path; all are unmounted after the test."""
    disks: list[SmallDisk] = []

    def mount(size_kib: int) -> SmallDisk:
        try:
            disks.append(SmallDisk(tmp_path / f"disk{len(disks)}", size_kib))
        except MountRefused as refused:
            pytest.skip(f"cannot mount a small tmpfs here ({refused}): the disk-full tests need root")
        return disks[-1]

    yield mount
    for disk in disks:
        disk.unmount()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: its pid names no process now, as after kill -9
    return process.pid


def plant_claim(store: Any, run_id: str, **columns: Any) -> None:
    """A `claims` row as another runner process would have left it; columns override the dead default."""
    from vjepa_core.store.claims import utc_now

    row = {"run_id": run_id, "owner": f"planted-{run_id}", "host": socket.gethostname(), "pid": dead_pid(),
           "pid_started": None, "command": "run-matrix", "claimed_at": utc_now(), "heartbeat_at": utc_now(),
           **columns}
    with store.write_transaction() as conn:
        conn.execute(f"INSERT INTO claims ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
