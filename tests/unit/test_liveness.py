"""One liveness rule (`vjepa_core.store.liveness`) for every "is that process gone" question: a reused pid
(a live process, but not the one that started at the recorded time) is gone for the claims, the dashboard's
Live page and the temporary-file sweep alike."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.queries import live
from vjepa_core.store import atomic
from vjepa_core.store.claims import BUSY, CLAIMED, Claims, utc_now
from vjepa_core.store.liveness import pid_alive, process_gone, process_started
from vjepa_core.store.warehouse import Warehouse

HERE = socket.gethostname()


def _claim_row(store: Warehouse, run_id: str, *, pid: int, pid_started: float | None) -> None:
    """A `claims` row as another runner process would have left it."""
    row: dict[str, Any] = {"run_id": run_id, "owner": f"planted-{run_id}", "host": HERE, "pid": pid,
                           "pid_started": pid_started, "command": "run-matrix", "claimed_at": utc_now(),
                           "heartbeat_at": utc_now()}
    with store.write_transaction() as conn:
        conn.execute(f"INSERT INTO claims ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


def test_a_reused_pid_is_gone_everywhere(tmp_path: Path) -> None:
    pid = os.getpid()  # a live process...
    started = process_started(pid)
    assert started is not None
    earlier = started - 3600  # ...but the recorded one started an hour earlier: it died, its pid was reused
    assert pid_alive(pid, started) and pid_alive(pid) and not pid_alive(pid, earlier)
    assert process_gone(pid, HERE, earlier) and not process_gone(pid, HERE, started)
    assert not process_gone(pid, "another-machine", earlier)  # another machine's pid says nothing here
    assert not process_gone(None, HERE) and not process_gone(float("nan"), HERE)

    # The dashboard: a running matrix stamped with the reused pid is stopped; with no start time, the pid decides.
    store = Warehouse(tmp_path / "w.duckdb")
    for matrix_id, stamp in {"reused": earlier, "alive": started, "no-start": None}.items():
        store.upsert_matrix({"matrix_id": matrix_id, "status": "running", "total_runs": 2, "pid": pid,
                             "pid_started": stamp, "host": HERE, "started_at": pd.Timestamp.now()})
    progress = live.matrix_progress(store.path)[0].set_index("matrix_id")
    assert progress["status"].to_dict() == {"reused": "stopped", "alive": "running", "no-start": "running"}

    # Claims: the Live page marks the reused pid's claim gone, and the next runner takes it over.
    _claim_row(store, "held-by-reused", pid=pid, pid_started=earlier)
    _claim_row(store, "held-by-live", pid=pid, pid_started=started)
    claims = live.running_now(store.path).set_index("run_id")
    assert claims["state"].to_dict() == {"held-by-reused": "gone", "held-by-live": "running"}
    with Claims(store, command="run") as other:
        assert other.claim("held-by-reused").kind == CLAIMED
        assert other.claim("held-by-live").kind == BUSY

    # The temporary-file sweep: our own temp names record our start time, and a reused pid's file is removed.
    ours = atomic.temp_name(tmp_path / "b.npy")
    assert f".{pid}.t{round(started * 1000)}." in ours.name
    reused = tmp_path / f".a.npy.tmp.{HERE}.{pid}.t{round(earlier * 1000)}.0123456789ab"
    older_name = tmp_path / f".c.npy.tmp.{HERE}.{pid}.0123456789ab"  # written before start times were recorded
    for path in (ours, reused, older_name):
        path.write_bytes(b"x")
    assert atomic.sweep(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if atomic.is_temp(p)) == sorted([ours.name, older_name.name])
