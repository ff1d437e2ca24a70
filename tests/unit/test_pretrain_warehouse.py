"""Pretraining runs in the warehouse: their own tables, written whole, reached by migration from schema 6."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from vjepa_core.store import schema
from vjepa_core.store.warehouse import RunRecord, Warehouse, read_connection, schema_version


def _pretrain(pretrain_id: str = "p1", epochs: int = 3) -> tuple[dict, list[dict]]:
    run = {"pretrain_id": pretrain_id, "model": "preset:tiny", "dataset": "corpus", "status": "success",
           "epochs": epochs, "chosen_epoch": epochs, "chosen_by": "last", "effective_rank": 9.5,
           "embedding_std": 0.9, "started_at": datetime.now(), "spec": {"masks": "8x0.15,2x0.7"},
           "skipped_videos": [{"path": "a.mp4", "reason": "empty"}]}
    rows = [{"epoch": e, "loss": None if e == 0 else 1 / e, "effective_rank": 10.0 - e, "embedding_std": 0.9,
             "probe_acc": 0.2 + 0.1 * e} for e in range(epochs + 1)]
    return run, rows


def test_a_pretraining_run_and_its_epochs_round_trip_and_are_replaced_whole(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    assert warehouse.pretrain_table("pretrain_runs").empty  # no file yet: nothing, and nothing created
    assert not (tmp_path / "w.duckdb").exists()
    warehouse.write_pretrain(*_pretrain("p1", 3))
    warehouse.write_pretrain(*_pretrain("p2", 1))
    warehouse.write_pretrain(*_pretrain("p1", 2))  # a rerun replaces, never appends
    runs = warehouse.pretrain_table("pretrain_runs")
    assert sorted(runs.pretrain_id) == ["p1", "p2"]
    epochs = warehouse.pretrain_table("pretrain_epochs", "p1")
    assert epochs.epoch.tolist() == [0, 1, 2] and epochs.probe_acc.tolist() == pytest.approx([0.2, 0.3, 0.4])
    assert epochs.loss.isna().tolist() == [True, False, False]
    assert len(warehouse.pretrain_table("pretrain_epochs")) == 5


def test_bad_pretraining_rows_are_refused_and_leave_the_previous_state(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_pretrain(*_pretrain("p1", 2))
    run, rows = _pretrain("p1", 4)
    with pytest.raises(ValueError, match="unknown column"):
        warehouse.write_pretrain(run, [*rows, {"epoch": 9, "colour": "red"}])
    with pytest.raises(ValueError, match="p2"):
        warehouse.write_pretrain(run, [*rows, {"pretrain_id": "p2", "epoch": 9}])
    with pytest.raises(ValueError, match="status"):
        warehouse.write_pretrain({**run, "status": "maybe"}, rows)
    assert warehouse.pretrain_table("pretrain_epochs", "p1").epoch.tolist() == [0, 1, 2]


def test_a_version_6_file_gains_the_pretraining_tables(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(RunRecord(run={"run_id": "r", "status": "success", "test_acc": 0.5}))
    with duckdb.connect(str(path)) as conn:  # what a version-6 file looks like
        conn.execute("DROP TABLE pretrain_runs")
        conn.execute("DROP TABLE pretrain_epochs")
        conn.execute("ALTER TABLE matrices DROP COLUMN pid_started")  # came later, in version 8
        conn.execute("DROP TABLE embedding_skips")  # came later, in version 9
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 6 and schema_version(path) == schema.SCHEMA_VERSION == 10
    Warehouse(path).write_pretrain(*_pretrain())
    assert Warehouse(path).get_run("r")["test_acc"] == 0.5  # earlier runs survive the upgrade
    assert Warehouse(path).pretrain_table("pretrain_runs").chosen_by.tolist() == ["last"]
    with read_connection(path) as conn:  # an upgraded file has the layout of a new one
        for table in schema.PRETRAIN_TABLES:
            columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
            assert columns == list(schema.catalog()[table])
