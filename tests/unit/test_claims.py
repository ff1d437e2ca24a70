"""Claims on a real warehouse file: one claimer per run, live holders respected, dead ones taken over.
(Many real processes racing for the same runs: tests/integration/test_claims_race.py.)"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import psutil

from tests.support import dead_pid, plant_claim
from vjepa_core.store import schema
from vjepa_core.store.claims import BUSY, CLAIMED, DONE, Claims, claim_alive, utc_now
from vjepa_core.store.liveness import pid_alive
from vjepa_core.store.warehouse import RunRecord, Warehouse, read_connection, schema_version


def success(run_id: str) -> RunRecord:
    return RunRecord(run={"run_id": run_id, "status": "success", "finished_at": utc_now()},
                     epochs=[{"epoch": 1, "val_acc": 0.5}])


def test_a_claimed_run_is_busy_for_others_until_recorded_then_done(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    with Claims(store, command="run-matrix") as mine, Claims(store, command="run") as other:
        assert mine.claim("r1", strategy="head", matrix_id="m").kind == CLAIMED
        busy = other.claim("r1")
        assert busy.kind == BUSY and busy.holder is not None
        assert (busy.holder.pid, busy.holder.host, busy.holder.command) == (
            os.getpid(), socket.gethostname(), "run-matrix")
        assert f"PID {busy.holder.pid} on {socket.gethostname()}, since " in busy.holder.text()
        row = store.claims().iloc[0]
        assert (row["run_id"], row["strategy"], row["matrix_id"], row["owner"]) == ("r1", "head", "m", mine.owner)
        assert mine.claim("r1").kind == CLAIMED  # claiming again what we hold is harmless

        mine.record(success("r1"))  # rows in and claim out, in one transaction
        assert store.claims().empty and store.completed_run_ids() == {"r1"}
        assert other.claim("r1").kind == DONE
    assert store.claims().empty


def test_a_claim_whose_process_is_gone_is_taken_over(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    store.migrate()
    plant_claim(store, "killed")  # this host, a pid that no longer exists
    me = os.getpid()
    plant_claim(store, "pid-reused", pid=me, pid_started=time.time() - 10 * 86400)  # our pid, but not our start
    plant_claim(store, "far-alive", host="another-machine", heartbeat_at=utc_now() - timedelta(seconds=30))
    plant_claim(store, "far-dead", host="another-machine", heartbeat_at=utc_now() - timedelta(seconds=3600))
    with Claims(store, command="run-matrix", stale_after=300) as claims:
        verdicts = {run_id: claims.claim(run_id) for run_id in ("killed", "pid-reused", "far-alive", "far-dead")}
    assert {k: v.kind for k, v in verdicts.items()} == {"killed": CLAIMED, "pid-reused": CLAIMED,
                                                        "far-alive": BUSY, "far-dead": CLAIMED}
    assert verdicts["far-dead"].holder.host == "another-machine"  # who was taken over from, for the log
    assert list(store.claims()["run_id"]) == ["far-alive"]  # ours were released on close


def test_liveness_rules() -> None:
    assert pid_alive(os.getpid()) and pid_alive(os.getpid(), psutil.Process().create_time())
    assert not pid_alive(dead_pid())
    here, now = socket.gethostname(), utc_now()
    assert claim_alive({"host": here, "pid": os.getpid(), "pid_started": None, "heartbeat_at": now - timedelta(days=9)})
    assert not claim_alive({"host": "x", "pid": os.getpid(), "heartbeat_at": now - timedelta(seconds=301)})


def test_heartbeat_refreshes_held_claims_and_close_releases_them(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    with Claims(store, command="run-matrix", heartbeat=0.2) as claims:
        claims.claim("a")
        claims.claim("b")
        first = store.claims().set_index("run_id")
        time.sleep(1.0)
        later = store.claims().set_index("run_id")
        assert (later["heartbeat_at"] > first["heartbeat_at"]).all()
        assert (later["claimed_at"] == first["claimed_at"]).all()
        claims.release({"a"})
        assert list(store.claims()["run_id"]) == ["b"]
    assert store.claims().empty


def test_force_reruns_a_success_but_not_what_another_process_recorded_meanwhile(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    store.write_run(success("old"))
    time.sleep(0.01)
    with Claims(store, command="run", force=True) as forced:
        assert forced.claim("old").kind == CLAIMED  # --force: run it again
        forced.release()
        with Claims(store, command="run") as other:  # another process records "new" after we started
            other.claim("new")
            other.record(success("new"))
        assert forced.claim("new").kind == DONE  # two --force runners still train it once
    failed = RunRecord(run={"run_id": "late", "status": "failed", "finished_at": utc_now() + timedelta(seconds=5)})
    with Claims(store, command="run-matrix") as claims:
        store.write_run(failed)
        assert claims.claim("late").kind == DONE  # failed elsewhere while we were running: not redone


def test_a_version_4_file_gains_the_claims_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).write_run(success("r1"))
    with duckdb.connect(str(path)) as conn:  # what a version-4 file looks like
        conn.execute("DROP TABLE claims")
        conn.execute("DROP TABLE embeddings")
        conn.execute("DROP TABLE pretrain_runs")  # came later, in version 7
        conn.execute("DROP TABLE pretrain_epochs")
        conn.execute("ALTER TABLE matrices DROP COLUMN pid_started")  # came later, in version 8
        conn.execute("DROP TABLE embedding_skips")  # came later, in version 9
        conn.execute("ALTER TABLE runs DROP COLUMN release_bytes")  # came later, in version 10
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Claims(Warehouse(path), command="run") as claims:  # the first claim upgrades the file
        assert claims.claim("r2").kind == CLAIMED
    assert schema_version(path) == schema.SCHEMA_VERSION
    with read_connection(path) as conn:
        columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_name = 'claims' ORDER BY ordinal_position").fetchall()]
    assert columns == list(schema.catalog()["claims"])


def test_claims_table_is_readable_without_a_warehouse(tmp_path: Path) -> None:
    assert Warehouse(tmp_path / "none.duckdb").claims().empty
    assert not (tmp_path / "none.duckdb").exists()
