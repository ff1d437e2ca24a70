"""The warehouse shared by real processes: a lock held by another process times out with a clear line, a
writer killed mid-transaction leaves the previous state, and a writer process racing a reader for the file
lock never shows a half-written run."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from tests.support import make_record, snapshot
from vjepa_core.store import locking, schema
from vjepa_core.store import warehouse as wh
from vjepa_core.store.warehouse import Warehouse, read_connection

HOLD_LOCK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("held_for", ["write", "read"])
def test_a_held_lock_times_out_with_a_clear_error(tmp_path: Path, held_for: str) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).migrate()
    warehouse = Warehouse(path, read_timeout=0.3, write_timeout=0.3)
    blocked = warehouse.runs if held_for == "write" else lambda: warehouse.write_run(make_record("r1"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), held_for], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(locking.WarehouseBusy, match=f"{path} is locked by PID {holder.pid}"):
            blocked()
        assert 0.3 <= time.monotonic() - start < 1.0
    finally:
        holder.communicate("")
    assert not locking._writer_flag(path).exists()  # a writer that gave up lowers its flag
    warehouse.write_run(make_record("r1"))  # the lock went with the process
    assert warehouse.completed_run_ids() == {"r1"}


def crash_while_writing(path: str) -> None:
    """Child process: dies (no cleanup, no rollback) in the middle of write_run's transaction."""
    insert = wh.insert

    def insert_then_die(conn: duckdb.DuckDBPyConnection, table: str, *args: Any, **kwargs: Any) -> None:
        if table == "predictions":
            os._exit(3)
        insert(conn, table, *args, **kwargs)

    wh.insert = insert_then_die
    Warehouse(path).write_run(make_record("r1", predictions=9, test_acc=0.1))


def test_a_writer_killed_mid_transaction_leaves_the_previous_state(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write_run(make_record("r1", predictions=5))
    before = snapshot(warehouse)

    child = multiprocessing.get_context("spawn").Process(target=crash_while_writing, args=(str(warehouse.path),))
    child.start()
    child.join(timeout=60)

    assert child.exitcode == 3
    after = snapshot(warehouse)
    for name in schema.RUN_TABLES:
        pd.testing.assert_frame_equal(after[name], before[name])


CONCURRENT_RUNS = 30
PREDICTIONS_PER_RUN = 200
EPOCHS_PER_RUN = 5


def timing_connects(seconds: list[float]) -> Callable[..., duckdb.DuckDBPyConnection]:
    """`locking._connect`, also recording how long each open took (lock waits included)."""
    connect = locking._connect

    def timed(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        start = time.perf_counter()
        conn = connect(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        return conn

    return timed


def write_runs_in_a_child(path: str, results: Any) -> None:
    """Child process: the runner's write pattern (matrix progress, then the run's rows)."""
    try:
        open_seconds: list[float] = []
        locking._connect = timing_connects(open_seconds)  # this process exits after the test
        warehouse = Warehouse(path)
        for i in range(CONCURRENT_RUNS):
            run_id = f"run{i:03d}"
            warehouse.upsert_matrix({"matrix_id": "m1", "status": "running", "current_run_id": run_id})
            warehouse.write_run(make_record(run_id, predictions=PREDICTIONS_PER_RUN, epochs=EPOCHS_PER_RUN))
            if i % 5 == 4:  # a forced re-run replaces a visible run while the reader reads
                rerun = make_record(f"run{i - 1:03d}", predictions=PREDICTIONS_PER_RUN, epochs=EPOCHS_PER_RUN)
                warehouse.write_run(rerun)
        results.put(("ok", open_seconds))
    except BaseException as error:  # reported to the parent, which fails the test with it
        results.put(("error", repr(error)))


READ_PROGRESS = """
SELECT r.run_id,
       (SELECT count(*) FROM predictions p WHERE p.run_id = r.run_id) AS predictions,
       (SELECT count(*) FROM epochs e WHERE e.run_id = r.run_id) AS epochs
FROM runs r ORDER BY r.run_id
"""


def test_reader_and_writer_processes_share_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).migrate()  # the file exists before the dashboard starts polling
    read_opens: list[float] = []
    monkeypatch.setattr(locking, "_connect", timing_connects(read_opens))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    writer = context.Process(target=write_runs_in_a_child, args=(str(path), results))
    writer.start()

    seen = []
    while writer.is_alive() and results.empty():  # as fast as it can: worse than any dashboard
        with read_connection(path) as conn:
            rows = conn.execute(READ_PROGRESS).fetchall()
        # Every run the reader can see is complete: all its predictions and epochs, never a part.
        assert all(row[1:] == (PREDICTIONS_PER_RUN, EPOCHS_PER_RUN) for row in rows), rows
        seen.append(len(rows))
    status, write_opens = results.get(timeout=60)
    writer.join(timeout=60)

    assert status == "ok", write_opens
    assert seen == sorted(seen)  # progress never goes backwards
    assert len({n for n in seen if 0 < n < CONCURRENT_RUNS}) >= 5  # the reads really did overlap the writes
    with read_connection(path) as conn:
        assert conn.execute(READ_PROGRESS).fetchall() == [
            (f"run{i:03d}", PREDICTIONS_PER_RUN, EPOCHS_PER_RUN) for i in range(CONCURRENT_RUNS)
        ]
    # Waits stay far below the timeouts, even with this reader hammering the file.
    assert max(read_opens) < locking.READ_TIMEOUT / 3
    assert max(write_opens) < locking.READ_TIMEOUT / 3
    print(f"\nopen seconds: {describe(read_opens, 'reader')}; {describe(write_opens, 'writer')}")


def describe(seconds: list[float], who: str) -> str:
    ordered = sorted(seconds)
    return (
        f"{who} {len(ordered)} opens, median {ordered[len(ordered) // 2] * 1000:.0f} ms,"
        f" p95 {ordered[int(len(ordered) * 0.95)] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
