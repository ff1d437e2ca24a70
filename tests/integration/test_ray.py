"""`--executor ray` on a local Ray (2 CPUs) gives the same run ids, metrics and predictions as local runs,
and only the driver writes the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from runner.cli import app
from runner.orchestration.driver import DriveOptions, run_matrix
from runner.orchestration.executors import LocalExecutor
from runner.orchestration.matrix import load_matrix
from vjepa_core.spec import ExecOptions
from vjepa_core.store.warehouse import Warehouse

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path: Path, synthetic_small: Path, local_ray: None) -> None:
    spec = tmp_path / "pair.yaml"
    spec.write_text(yaml.safe_dump({"name": "pair", "axes": {"strategies": ["head", "lora"]}, "base": {
        "data": str(synthetic_small), "model": "tiny", "epochs": 1, "batch_size": 4, "train_views": 1}}))
    matrix = load_matrix(spec)
    local = tmp_path / "local.duckdb"
    run_matrix(matrix, results=tmp_path / "local", warehouse=local, options=ExecOptions(progress=False),
               executor=lambda opts: LocalExecutor(tmp_path / "local", opts), drive=DriveOptions(progress=False))

    remote = tmp_path / "ray.duckdb"
    result = CliRunner().invoke(app, ["run-matrix", str(spec), "--executor", "ray", "--warehouse", str(remote),
                                      "--results", str(tmp_path / "ray"), "-q"])
    assert result.exit_code == 0, result.output
    assert "2 run(s): 2 ran, 0 skipped (already done), 0 failed" in result.output
    assert ray.is_initialized()  # the executor did not shut down a Ray it did not start

    a, b = (Warehouse(path).runs().set_index("run_id").sort_index() for path in (local, remote))
    assert list(a.index) == list(b.index) == sorted(s.run_id for s in matrix.runs)
    assert set(b["status"]) == {"success"} and set(b["matrix_id"]) == {matrix.matrix_id}
    for column in ("test_acc", "best_val_acc", "best_epoch", "train_acc", "trainable_params", "num_test"):
        assert a[column].tolist() == b[column].tolist(), column
    order = ["run_id", "split", "video"]
    pa, pb = (Warehouse(path).table("predictions").sort_values(order) for path in (local, remote))
    assert pa[["run_id", "split", "video", "pred_class"]].values.tolist() == \
        pb[["run_id", "split", "video", "pred_class"]].values.tolist()
    assert pa["confidence"].to_numpy() == pytest.approx(pb["confidence"].to_numpy(), abs=1e-5)
    for run_id in b.index:  # the workers wrote their checkpoints; the driver wrote every row
        assert (tmp_path / "ray" / "checkpoints" / run_id / "manifest.json").is_file()
    assert Warehouse(remote).matrix(matrix.matrix_id)["status"] == "finished"
