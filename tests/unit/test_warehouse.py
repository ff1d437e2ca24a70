"""The DuckDB warehouse: schema and migrations, atomic run writes, lookups, exports, lock waits in one process.
(Other processes holding the lock, killed writers and a writer racing a reader: tests/integration/
test_warehouse_processes.py.)"""

from __future__ import annotations

import ast
import os
import re
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.support import START, make_record, snapshot
from vjepa_core.errors import UserError
from vjepa_core.store import locking, schema
from vjepa_core.store.warehouse import RunRecord, Warehouse, read_connection, schema_version

# -- schema and versions ---------------------------------------------------------------------------


def test_schema_file_states_the_code_version() -> None:
    first_line = schema.schema_sql().splitlines()[0]
    assert first_line == f"-- schema_version: {schema.SCHEMA_VERSION}"


def test_schema_created_on_first_write(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.duckdb"
    warehouse = Warehouse(path)
    assert not path.exists()  # the constructor opens nothing
    assert schema_version(path) is None

    warehouse.write_run(make_record("r1"))

    assert schema_version(path) == schema.SCHEMA_VERSION
    with read_connection(path) as conn:
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            ).fetchall()
        )
    assert types["runs.run_id"] == "VARCHAR"
    assert types["runs.spec"] == "JSON"
    assert types["runs.started_at"] == "TIMESTAMP"
    assert types["runs.trainable_params"] == "BIGINT"
    assert types["runs.test_acc"] == "DOUBLE"
    assert types["predictions.correct"] == "BOOLEAN"
    assert types["epochs.epoch"] == "INTEGER"
    assert {name.split(".")[0] for name in types} == {*schema.TABLES, "meta", "claims"}


def test_migrates_an_older_file_step_by_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    current = schema.SCHEMA_VERSION  # the file's version; two made-up steps follow it
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 2)
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        {
            **schema.MIGRATIONS,
            current: "ALTER TABLE runs ADD COLUMN note VARCHAR; UPDATE runs SET note = 'v2'",
            current + 1: "UPDATE runs SET note = note || '+v3'",
        },
    )
    with pytest.raises(schema.SchemaOutdated, match=str(path)), read_connection(path):
        pass  # a bare reader cannot upgrade, and says so

    run = Warehouse(path).get_run("r1")  # Warehouse reads upgrade once, then read

    assert schema_version(path) == current + 2
    assert run is not None
    assert run["note"] == "v2+v3"
    assert run["test_acc"] == 0.75
    assert len(Warehouse(path).table("predictions", "r1")) == 4


def test_a_version_2_file_gains_the_matrix_host_and_the_error_kind(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).upsert_matrix({"matrix_id": "m", "status": "finished", "pid": 7})
    Warehouse(path).write_run(RunRecord(run={"run_id": "r", "status": "failed", "error": "boom"}))
    with duckdb.connect(str(path)) as conn:  # what a version-2 file looks like
        conn.execute("ALTER TABLE matrices DROP COLUMN host")
        conn.execute("ALTER TABLE runs DROP COLUMN error_kind")
        conn.execute("DROP TABLE claims")
        conn.execute("DROP TABLE embeddings")
        conn.execute("DROP TABLE pretrain_runs")
        conn.execute("DROP TABLE pretrain_epochs")
        conn.execute("ALTER TABLE matrices DROP COLUMN pid_started")
        conn.execute("DROP TABLE embedding_skips")
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 2 and schema_version(path) == schema.SCHEMA_VERSION
    Warehouse(path).upsert_matrix({"matrix_id": "m", "host": "box-1"})
    matrix = Warehouse(path).matrix("m")
    assert (matrix["status"], matrix["pid"], matrix["host"]) == ("finished", 7, "box-1")
    run = Warehouse(path).get_run("r")
    assert (run["error"], run["error_kind"]) == ("boom", None)  # an old failure's kind is unknown
    Warehouse(path).write_run(RunRecord(run={"run_id": "r", "status": "failed", "error_kind": "storage"}))
    assert Warehouse(path).get_run("r")["error_kind"] == "storage"
    with read_connection(path) as conn:  # an upgraded file has the layout of a new one
        for table in ("matrices", "runs"):
            columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
            assert columns == list(schema.catalog()[table])


def _embedding_rows(fingerprint: str, videos: list[str], label: str = "up") -> pd.DataFrame:
    return pd.DataFrame({"model_fingerprint": fingerprint, "video": videos, "start_frame": 0, "end_frame": 40,
                         "label": label, "source": "encoder", "dim": 3, "created_at": datetime.now()})


def test_a_version_5_file_gains_the_embeddings_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    with duckdb.connect(str(path)) as conn:  # what a version-5 file looks like
        conn.execute("DROP TABLE embeddings")
        conn.execute("DROP TABLE pretrain_runs")  # came later, in version 7
        conn.execute("DROP TABLE pretrain_epochs")
        conn.execute("ALTER TABLE matrices DROP COLUMN pid_started")  # came later, in version 8
        conn.execute("DROP TABLE embedding_skips")  # came later, in version 9
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 5 and schema_version(path) == schema.SCHEMA_VERSION
    with read_connection(path) as conn:
        columns = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'embeddings' ORDER BY ordinal_position").fetchall())
    assert columns == schema.catalog()["embeddings"]  # an upgraded file has the layout of a new one
    assert Warehouse(path).write_embeddings(_embedding_rows("f1", ["a.mp4"]), np.ones((1, 3))) == 1
    assert Warehouse(path).get_run("r1")["test_acc"] == 0.75


def test_a_version_8_file_gains_the_embedding_skips_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_embeddings(_embedding_rows("f1", ["a.mp4"]), np.ones((1, 3)))
    with duckdb.connect(str(path)) as conn:  # what a version-8 file looks like
        conn.execute("DROP TABLE embedding_skips")
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 8 and schema_version(path) == schema.SCHEMA_VERSION
    with read_connection(path) as conn:
        columns = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'embedding_skips' ORDER BY ordinal_position").fetchall())
    assert columns == schema.catalog()["embedding_skips"]  # an upgraded file has the layout of a new one
    assert Warehouse(path).embeddings()["video"].tolist() == ["a.mp4"]


def test_a_version_9_file_gains_the_release_size(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    with duckdb.connect(str(path)) as conn:  # what a version-9 file looks like
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")
        conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 9 and schema_version(path) == schema.SCHEMA_VERSION
    with read_connection(path) as conn:
        columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_name = 'runs' ORDER BY ordinal_position").fetchall()]
    assert columns == list(schema.catalog()["runs"])  # an upgraded file has the layout of a new one
    run = Warehouse(path).get_run("r1")
    assert run["test_acc"] == 0.75 and run["release_bytes"] is None  # unknown for a run recorded before


def _skips(fingerprint: str, videos: list[str], window: float | None = None) -> pd.DataFrame:
    return pd.DataFrame({"model_fingerprint": fingerprint, "video": videos, "window_s": window,
                         "stride_s": None if window is None else window / 2, "reason": "no video stream",
                         "dataset": "clips", "created_at": datetime.now()})


def test_embeddings_and_the_files_skipped_land_together_and_a_fixed_file_leaves_the_skips(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    assert store.embedding_skips().empty  # no file yet: nothing skipped, nothing created
    assert store.write_embeddings(_embedding_rows("f1", ["a.mp4"]), np.ones((1, 3)),
                                  skipped=_skips("f1", ["b.mp4", "c.mp4"])) == 1
    assert store.write_embeddings(_embedding_rows("f1", []), np.ones((0, 3)),
                                  skipped=_skips("f1", ["d.mp4"], 2.0)) == 0
    skips = store.embedding_skips("f1")
    assert list(zip(skips["video"], skips["window_s"].fillna(0), strict=True)) == [("b.mp4", 0), ("c.mp4", 0),
                                                                                  ("d.mp4", 2.0)]
    # b.mp4 was repaired and embeds now; c.mp4 still fails: the set's skips say so, other sets keep theirs
    store.write_embeddings(_embedding_rows("f1", ["b.mp4"]), np.ones((1, 3)), skipped=_skips("f1", ["c.mp4"]))
    skips = store.embedding_skips("f1")
    assert list(zip(skips["video"], skips["window_s"].fillna(0), strict=True)) == [("c.mp4", 0), ("d.mp4", 2.0)]
    assert sorted(store.embeddings("f1")["video"]) == ["a.mp4", "b.mp4"]
    with pytest.raises(ValueError, match="embedding_skips.window_s"):  # validated before the file is opened
        store.write_embeddings(_embedding_rows("f1", []), np.ones((0, 3)),
                               skipped=_skips("f1", ["e.mp4"]).assign(window_s="wide"))
    assert "e.mp4" not in set(store.embedding_skips()["video"])


def test_a_version_7_file_gains_the_matrix_process_start(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).upsert_matrix({"matrix_id": "m", "status": "running", "pid": 7, "host": "box-1"})
    with duckdb.connect(str(path)) as conn:  # what a version-7 file looks like
        conn.execute("ALTER TABLE matrices DROP COLUMN pid_started")
        conn.execute("DROP TABLE embedding_skips")  # came later, in version 9
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    assert Warehouse(path).migrate() == 7 and schema_version(path) == schema.SCHEMA_VERSION
    matrix = Warehouse(path).matrix("m")
    assert (matrix["pid"], matrix["host"], matrix["pid_started"]) == (7, "box-1", None)  # unknown: the pid decides
    Warehouse(path).upsert_matrix({"matrix_id": "m", "pid_started": 1700000000.25})
    assert Warehouse(path).matrix("m")["pid_started"] == 1700000000.25
    with read_connection(path) as conn:
        columns = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'matrices' ORDER BY ordinal_position").fetchall())
    assert columns == schema.catalog()["matrices"]  # an upgraded file has the layout of a new one


def test_embeddings_are_replaced_by_key_in_one_transaction(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    store.write_embeddings(_embedding_rows("f1", ["a.mp4", "b.mp4"]), vectors)
    store.write_embeddings(_embedding_rows("f2", ["a.mp4"]), vectors[:1])
    store.write_embeddings(_embedding_rows("f1", ["b.mp4"], label="down"), -vectors[1:])  # same key: replaced
    table = store.embeddings("f1")
    assert list(table["video"]) == ["a.mp4", "b.mp4"] and list(table["label"]) == ["up", "down"]
    assert np.array_equal(np.stack(table["embedding"]), np.stack([vectors[0], -vectors[1]]))
    assert len(store.embeddings()) == 3
    with pytest.raises(ValueError, match="2 rows but 1 vectors"):
        store.write_embeddings(_embedding_rows("f3", ["a.mp4", "c.mp4"]), vectors[:1])
    with pytest.raises(duckdb.ConstraintException):  # one bad row: nothing of the batch lands
        store.write_embeddings(_embedding_rows("f3", ["a.mp4", None]), vectors)
    assert store.embeddings("f3").empty


def test_failed_migration_step_leaves_the_file_at_the_last_good_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    current = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {**schema.MIGRATIONS,
                                           current: "ALTER TABLE runs ADD COLUMN note VARCHAR; SELECT * FROM nowhere"})

    with pytest.raises(duckdb.CatalogException):
        Warehouse(path).migrate()

    assert schema_version(path) == current
    with duckdb.connect(str(path), read_only=True) as conn:
        columns = [row[0] for row in conn.execute("DESCRIBE runs").fetchall()]
    assert "note" not in columns


def test_newer_warehouse_asks_to_upgrade_vjepa_lab(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")

    for action in (
        lambda: Warehouse(path).runs(),
        lambda: Warehouse(path).write_run(make_record("r2")),
        lambda: read_connection(path).__enter__(),
    ):
        with pytest.raises(UserError, match="upgrade vjepa-lab") as caught:
            action()
        assert str(path) in str(caught.value)
        assert "\n" not in str(caught.value)
    assert schema_version(path) == 99


def test_missing_warehouse_is_a_user_error_and_readers_create_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "w.duckdb"
    warehouse = Warehouse(path)
    for action in (
        warehouse.runs,
        lambda: warehouse.get_run("abc"),
        lambda: warehouse.table("epochs"),
        lambda: warehouse.export(tmp_path / "out", "csv"),
        lambda: read_connection(path).__enter__(),
    ):
        with pytest.raises(UserError, match=f"no warehouse at {path}"):
            action()
    assert warehouse.completed_run_ids() == set()  # nothing run yet is not an error for the runner
    assert schema_version(path) is None
    assert not path.parent.exists()


def test_files_that_are_not_warehouses(tmp_path: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("hello")
    with pytest.raises(UserError, match=f"cannot open warehouse {text}"):
        Warehouse(text).runs()

    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as conn:
        conn.execute("CREATE TABLE runs (x INTEGER)")
    with pytest.raises(UserError, match="not a vjepa-lab warehouse"):
        Warehouse(foreign).write_run(make_record("r1"))
    with pytest.raises(UserError, match="not a vjepa-lab warehouse"):
        Warehouse(foreign).runs()

    sqlite = tmp_path / "sqlite.duckdb"  # DuckDB would fetch its SQLite extension from the internet for it
    with closing(sqlite3.connect(sqlite)) as conn:
        conn.execute("CREATE TABLE runs (x INTEGER)")
        conn.commit()
    folder = tmp_path / "results"
    folder.mkdir()
    for path, message in ((sqlite, "it is an SQLite database, not a DuckDB file"),
                          (folder, f"is a folder; the warehouse is one DuckDB file: pass --warehouse {folder}/")):
        for action in (Warehouse(path).runs, lambda path=path: Warehouse(path).write_run(make_record("r1"))):
            with pytest.raises(UserError, match=re.escape(message)):
                action()
    assert list(folder.iterdir()) == []


# -- writing runs ----------------------------------------------------------------------------------


def test_run_round_trip_converts_python_values(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    record = make_record("r1")
    record.run.update(
        {
            "started_at": datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "finished_at": "2025-03-01T12:30:00Z",
            "checkpoint_path": tmp_path / "ckpt",
            "test_loss": np.float32(0.5),
            "num_test": np.int64(12),
            "versions": {"torch": "2.5.0", "nan": float("nan")},
            "skipped_videos": ["bad.mp4"],
        }
    )
    warehouse.write_run(record)

    run = warehouse.get_run("r1")
    assert run is not None
    assert run["started_at"] == datetime(2025, 3, 1, 12, 0)  # stored as naive UTC
    assert run["finished_at"] == datetime(2025, 3, 1, 12, 30)
    assert run["checkpoint_path"] == str(tmp_path / "ckpt")
    assert run["test_loss"] == 0.5
    assert run["num_test"] == 12
    assert run["trainable_params"] == 2**33
    assert run["versions"] == {"torch": "2.5.0", "nan": None}
    assert run["spec"] == {"strategy": "head", "lr": 1e-3}
    assert run["skipped_videos"] == ["bad.mp4"]
    assert run["lora_rank"] is None  # absent keys are NULL

    epochs = warehouse.table("epochs", "r1")
    assert epochs["epoch"].tolist() == [0, 1, 2]
    assert (epochs["run_id"] == "r1").all()  # filled in by the writer
    predictions = warehouse.table("predictions", "r1")
    assert predictions["correct"].tolist() == [True, False, True, False]
    assert predictions["probs"].iloc[0] == '{"up": 0.9, "down": 0.1}'


def test_failed_run_round_trips_and_is_not_completed(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_run(make_record("ok"))
    failed = RunRecord(run={"run_id": "bad", "strategy": "lora", "status": "failed", "error": "CUDA OOM"})
    warehouse.write_run(failed)

    run = warehouse.get_run("bad")
    assert run is not None
    assert (run["status"], run["error"], run["strategy"]) == ("failed", "CUDA OOM", "lora")
    assert warehouse.completed_run_ids() == {"ok"}
    assert warehouse.completed_run_ids(["bad", "ok", "other"]) == {"ok"}
    assert warehouse.completed_run_ids([]) == set()
    assert warehouse.runs(status="failed")["run_id"].tolist() == ["bad"]
    assert warehouse.runs(strategy="head", model="tiny")["run_id"].tolist() == ["ok"]
    assert len(warehouse.runs()) == 2
    assert warehouse.table("predictions", "bad").empty


def test_write_run_replaces_the_whole_run(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_run(make_record("r1", predictions=5, epochs=4))
    warehouse.write_run(make_record("r2", predictions=2))

    warehouse.write_run(make_record("r1", predictions=3, epochs=2, test_acc=0.9))

    run = warehouse.get_run("r1")
    assert run is not None and run["test_acc"] == 0.9
    assert len(warehouse.table("predictions", "r1")) == 3
    assert len(warehouse.table("epochs", "r1")) == 2
    assert len(warehouse.table("predictions", "r2")) == 2  # other runs untouched
    assert len(warehouse.runs()) == 2


@pytest.mark.parametrize(
    ("spoil", "error"),
    [
        ("duplicate_epoch", duckdb.ConstraintException),
        ("invalid_json", duckdb.ConversionException),
    ],
)
def test_failure_mid_write_keeps_the_previous_state(tmp_path: Path, spoil: str, error: type) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_run(make_record("r1", predictions=5))
    warehouse.write_run(make_record("r2"))
    before = snapshot(warehouse)

    # Both spoilt rows pass validation and fail inside the transaction, after the old rows of r1
    # were deleted and the new `runs` row inserted.
    record = make_record("r1", predictions=7, test_acc=0.1)
    if spoil == "duplicate_epoch":
        record.epochs.append(dict(record.epochs[0]))
    else:
        record.predictions[-1]["probs"] = "{not json"
    with pytest.raises(error):
        warehouse.write_run(record)

    after = snapshot(warehouse)
    for name in schema.RUN_TABLES:
        pd.testing.assert_frame_equal(after[name], before[name])


def test_bad_records_are_refused_before_the_file_is_touched(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(path)
    bad_records = {
        "unknown column": RunRecord(run={"run_id": "r", "status": "success", "colour": "red"}),
        "status must be": RunRecord(run={"run_id": "r", "status": "done"}),
        "run_id": RunRecord(run={"status": "success"}),
        "of run 'other'": RunRecord(run={"run_id": "r", "status": "success"}, epochs=[{"run_id": "other", "epoch": 0}]),
        r"epochs.epoch \(INTEGER\)": RunRecord(run={"run_id": "r", "status": "success"}, epochs=[{"epoch": 1.5}]),
        r"runs.test_acc \(DOUBLE\)": RunRecord(run={"run_id": "r", "status": "success", "test_acc": "high"}),
    }
    for message, record in bad_records.items():
        with pytest.raises(ValueError, match=message):
            warehouse.write_run(record)
    assert not path.exists()


def test_the_warehouse_is_the_files_only_writer() -> None:
    """Only `store.warehouse` opens a read-write connection, and only `store.locking` opens a file at all."""
    root = Path(__file__).resolve().parents[2]
    writers, openers = set(), set()
    for package in ("vjepa_core", "runner", "dashboard", "demo", "benchmarks"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                module = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
                first = node.args[0] if node.args else None
                in_memory = isinstance(first, ast.Constant) and first.value == ":memory:"
                if name == "write_connection":
                    writers.add(path.relative_to(root).as_posix())
                if module == "duckdb" and name == "connect" and not in_memory:
                    openers.add(path.relative_to(root).as_posix())
    assert writers == {"vjepa_core/store/warehouse.py"}
    assert openers == {"vjepa_core/store/locking.py"}


def test_upsert_matrix_updates_only_the_given_columns(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.upsert_matrix(
        {"matrix_id": "m1", "name": "default", "spec": {"strategies": ["head"]}, "total_runs": 6,
         "status": "running", "started_at": START, "pid": 4242}
    )
    warehouse.upsert_matrix({"matrix_id": "m1", "current_run_id": "r3"})
    warehouse.upsert_matrix({"matrix_id": "m2", "status": "interrupted"})

    matrix = warehouse.matrix("m1")
    assert matrix is not None
    assert (matrix["name"], matrix["total_runs"], matrix["status"], matrix["pid"]) == ("default", 6, "running", 4242)
    assert matrix["current_run_id"] == "r3"
    assert matrix["spec"] == {"strategies": ["head"]}
    assert matrix["updated_at"] > START  # filled in on every upsert
    assert warehouse.matrices()["matrix_id"].tolist() == ["m1", "m2"]
    assert warehouse.matrix("nope") is None
    with pytest.raises(ValueError, match="status"):
        warehouse.upsert_matrix({"matrix_id": "m1", "status": "paused"})


# -- reading ---------------------------------------------------------------------------------------


def test_get_run_by_unique_prefix(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    for run_id in ("abc123", "abd456", "abd4567"):
        warehouse.write_run(make_record(run_id))

    assert warehouse.get_run("abc")["run_id"] == "abc123"  # type: ignore[index]
    assert warehouse.get_run("abc123")["run_id"] == "abc123"  # type: ignore[index]
    assert warehouse.get_run("abd456")["run_id"] == "abd456"  # type: ignore[index]  exact wins
    assert warehouse.get_run("zz") is None
    with pytest.raises(UserError, match="ambiguous.*abd456, abd4567"):
        warehouse.get_run("ab")
    with pytest.raises(UserError, match="empty run id"):
        warehouse.get_run(" ")
    with pytest.raises(UserError, match="unknown warehouse table"):
        warehouse.table("meta")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_one_file_per_table_with_every_row(tmp_path: Path, fmt: str) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_run(make_record("r1", predictions=6))
    warehouse.write_run(make_record("r2", predictions=3))
    warehouse.write_run(RunRecord(run={"run_id": "r3", "status": "failed", "error": "boom"}))
    warehouse.upsert_matrix({"matrix_id": "m1", "status": "finished"})
    warehouse.write_embeddings(_embedding_rows("f1", ["a.mp4", "b.mp4"]), np.ones((2, 3)),
                               skipped=_skips("f1", ["c.mp4"]))
    warehouse.write_pretrain({"pretrain_id": "p1", "status": "success"}, [{"epoch": 0}, {"epoch": 1, "loss": 0.3}])

    paths = warehouse.export(tmp_path / "out", fmt)  # type: ignore[arg-type]

    assert [p.name for p in paths] == [f"{t}.{fmt}" for t in schema.TABLES]
    expected = {"runs": 3, "epochs": 6, "class_metrics": 4, "confusion": 8, "predictions": 9, "matrices": 1,
                "embeddings": 2, "embedding_skips": 1, "pretrain_runs": 1, "pretrain_epochs": 2}
    for path in paths:
        reader = "read_csv_auto" if fmt == "csv" else "read_parquet"
        count = duckdb.execute(f"SELECT count(*) FROM {reader}(?)", [str(path)]).fetchall()[0][0]
        assert count == expected[path.stem], path.name
    assert not list((tmp_path / "out").glob("*.partial"))
    with pytest.raises(UserError, match="unknown export format"):
        warehouse.export(tmp_path / "out", "xlsx")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="is a file: export writes one file per table into a folder"):
        warehouse.export(paths[0], fmt)  # type: ignore[arg-type]


def test_default_warehouse_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vjepa_core import paths

    monkeypatch.delenv(paths.WAREHOUSE_ENV, raising=False)
    assert paths.warehouse_path() == Path("warehouse/vjepa.duckdb")
    monkeypatch.setenv(paths.WAREHOUSE_ENV, str(tmp_path / "x.duckdb"))
    assert paths.warehouse_path() == tmp_path / "x.duckdb"
    assert paths.warehouse_path(tmp_path / "y.duckdb") == tmp_path / "y.duckdb"


# -- concurrency -----------------------------------------------------------------------------------

def test_same_process_lock_conflict_is_retried_then_times_out(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).migrate()
    with duckdb.connect(str(path)), pytest.raises(locking.WarehouseBusy, match="another connection in this process"):
        Warehouse(path, read_timeout=0.1).runs()


def test_readers_give_way_to_a_waiting_writer_but_not_to_a_stale_flag(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(path, read_timeout=0.2)
    warehouse.write_run(make_record("r1"))
    flag = locking._writer_flag(path)
    flag.write_text("4242")
    with pytest.raises(locking.WarehouseBusy, match=r"a waiting writer \(PID 4242\)"):
        warehouse.runs()

    stale = time.time() - 2 * locking._FLAG_FRESH  # left by a writer that died while waiting
    os.utime(flag, (stale, stale))
    assert warehouse.runs()["run_id"].tolist() == ["r1"]


def test_readers_give_way_to_a_stuck_writer_only_for_a_while(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(make_record("r1"))
    monkeypatch.setattr(locking, "_YIELD_TO_WRITER", 0.3)
    flag = locking._writer_flag(path)
    flag.write_text("4242")
    stop = threading.Event()

    def stuck_writer() -> None:  # keeps its flag fresh and never gets in
        while not stop.wait(0.05):
            flag.touch()

    refresher = threading.Thread(target=stuck_writer)
    refresher.start()
    try:
        start = time.monotonic()
        assert Warehouse(path, read_timeout=5).runs()["run_id"].tolist() == ["r1"]
        assert 0.3 <= time.monotonic() - start < 2
    finally:
        stop.set()
        refresher.join()


def test_an_empty_duckdb_file_becomes_a_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()  # e.g. left by a first write that crashed
    assert schema_version(path) == 0
    with pytest.raises(schema.SchemaOutdated), read_connection(path):
        pass
    warehouse = Warehouse(path)
    assert warehouse.completed_run_ids() == set()
    assert schema_version(path) == schema.SCHEMA_VERSION
