"""Shared pytest fixtures.

Datasets
--------
`synthetic_small`: a real synthetic video set (6 motion classes x 4 videos, 96x128, 40 frames,
alternating mp4/avi), generated once per test session. Treat it as read-only: tests that need to
add, break or remove files copy it into their own `tmp_path` first.

Runs
----
`trained_runs`: a warehouse + results folder filled by the real runner (3 strategies x 2 seeds on
`synthetic_small`, tiny preset, plus one failed run): what the dashboard and demo tests read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from vjepa_core.data.synthetic import make_synthetic

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
    from vjepa_core.warehouse import RunRecord, Warehouse

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
