"""What runs now: each matrix's progress (done, total, elapsed, ETA; a 'running' matrix whose process died shows
as 'stopped') and which process trains which run, alive or gone (the next runner takes the run over). Both ask
`vjepa_core.store.liveness`, so a reused pid is not mistaken for the process that claimed a run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from vjepa_core.store import warehouse as wh
from vjepa_core.store.claims import claim_alive, utc_now
from vjepa_core.store.liveness import process_gone


def matrix_progress(path: str | Path, *, recent: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per matrix: total, done, succeeded, failed, fraction, elapsed and ETA; plus the newest runs."""
    progress_sql = """
        SELECT m.matrix_id, m.name, m.status, m.total_runs, m.started_at, m.updated_at, m.current_run_id,
               m.pid, m.pid_started, m.host,
               count(r.run_id) AS done, count(*) FILTER (WHERE r.status = 'success') AS succeeded,
               count(*) FILTER (WHERE r.status = 'failed') AS failed
        FROM matrices m LEFT JOIN runs r USING (matrix_id)
        GROUP BY ALL ORDER BY m.started_at DESC NULLS LAST"""
    recent_sql = """SELECT run_id, matrix_id, strategy, status, test_acc, best_val_acc, train_seconds, finished_at
                    FROM runs ORDER BY finished_at DESC NULLS LAST LIMIT ?"""
    with wh.read_connection(path) as conn:
        progress = conn.execute(progress_sql).df()
        newest = conn.execute(recent_sql, [recent]).df()
    return _with_eta(_mark_stopped(progress)), newest


def running_now(path: str | Path) -> pd.DataFrame:
    """One row per claimed run, oldest claim first (see `shape_claims`)."""
    sql = """SELECT c.run_id, c.strategy, c.matrix_id, m.name AS matrix_name, c.command, c.host, c.pid,
                    c.pid_started, c.claimed_at, c.heartbeat_at
             FROM claims c LEFT JOIN matrices m USING (matrix_id) ORDER BY c.claimed_at, c.run_id"""
    with wh.read_connection(path) as conn:
        claims = conn.execute(sql).df()
    return shape_claims(claims, now=utc_now())


def shape_claims(claims: pd.DataFrame, *, now: datetime) -> pd.DataFrame:
    """Add `process` ('PID n on host'), `state` (running / gone), `running_seconds`, `heartbeat_age_seconds`."""
    claims = claims.copy()
    records = claims.to_dict("records")
    claims["process"] = [f"PID {row['pid']} on {row['host']}" for row in records]
    claims["state"] = ["running" if claim_alive(row, now=now) else "gone" for row in records]
    claims["running_seconds"] = (now - claims["claimed_at"]).dt.total_seconds()
    claims["heartbeat_age_seconds"] = (now - claims["heartbeat_at"]).dt.total_seconds()
    return claims


def _mark_stopped(progress: pd.DataFrame) -> pd.DataFrame:
    """A 'running' matrix whose process is gone from this machine (kill -9, OOM, reboot) is 'stopped'."""
    progress = progress.copy()
    gone = [status == "running" and process_gone(pid, host, started)
            for status, pid, host, started in zip(progress["status"], progress["pid"], progress["host"],
                                                  progress["pid_started"], strict=True)]
    progress.loc[gone, "status"] = "stopped"
    return progress


def _with_eta(progress: pd.DataFrame) -> pd.DataFrame:
    progress = progress.copy()
    total = progress["total_runs"].astype("float64")
    done = progress["done"].astype("float64")
    # A re-run matrix skips finished runs, so done can pass total; the bar must still end at 100%.
    progress["fraction"] = (done / total.where(total > 0)).clip(upper=1.0).fillna(0.0)
    elapsed = (progress["updated_at"] - progress["started_at"]).dt.total_seconds()
    progress["elapsed_seconds"] = elapsed
    per_run = elapsed / done.where(done > 0)
    remaining = (total - done).clip(lower=0)
    progress["eta_seconds"] = (per_run * remaining).where(progress["status"] == "running")
    return progress
