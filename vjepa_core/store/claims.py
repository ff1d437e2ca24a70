"""Claims: which runner process trains which run, so that many processes on one warehouse train each run once.

A claim is a `claims` row (run id, owner, host, pid and its start time, heartbeat). `Claims.claim` decides in
one write transaction whether a run is done, busy (a live holder) or now ours (free, or its holder gone: dead
on this machine, or silent past `stale_after` on another); a heartbeat thread keeps held claims fresh, and
`record` writes a run's rows and releases its claim together. Only SIGKILL leaves a claim behind, and the next
claimer takes it over. Imports no torch: the dashboard's Live page reads claims.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal

from vjepa_core.store.liveness import pid_alive, process_started
from vjepa_core.store.rows import records
from vjepa_core.store.warehouse import RunRecord, Warehouse

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# Another machine's claim counts as abandoned after this long without a heartbeat. Generous: a
# heartbeat can wait up to locking.WRITE_TIMEOUT for the file's lock.
STALE_AFTER_SECONDS = 300.0

CLAIMED: Literal["claimed"] = "claimed"
DONE: Literal["done"] = "done"
BUSY: Literal["busy"] = "busy"


@dataclass(frozen=True)
class Holder:
    """The process holding (or that held) a claim."""

    host: str
    pid: int
    command: str | None
    claimed_at: datetime  # naive UTC

    def text(self) -> str:
        local = self.claimed_at.replace(tzinfo=timezone.utc).astimezone()
        return f"PID {self.pid} on {self.host}, since {local:%H:%M:%S}"


@dataclass(frozen=True)
class Verdict:
    kind: Literal["claimed", "done", "busy"]
    holder: Holder | None = None  # busy: who runs it; claimed: the gone process taken over from, if any


class RunningElsewhere(Exception):
    """`runner run` of a run that a live process is training."""

    def __init__(self, run_id: str, holder: Holder) -> None:
        super().__init__(f"run {run_id}: skipped, running elsewhere ({holder.text()})")
        self.holder = holder


def utc_now() -> datetime:
    """Naive UTC, as the warehouse stores TIMESTAMPs."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def claim_alive(row: dict[str, Any], *, now: datetime | None = None,
                stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """Is the process holding this `claims` row alive, as far as this machine can tell?"""
    if row["host"] == socket.gethostname():
        return pid_alive(row["pid"], row.get("pid_started"))
    age = ((now or utc_now()) - _naive(row["heartbeat_at"])).total_seconds()
    return age < stale_after


class Claims:
    """This process's claims on one warehouse (see the module docstring); use as a context manager."""

    def __init__(self, store: Warehouse, *, command: str, force: bool = False,
                 heartbeat: float = HEARTBEAT_SECONDS, stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.store, self.command, self.force = store, command, force
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.owner = uuid.uuid4().hex
        self.since = utc_now()  # runs recorded after this by others are not redone
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._me = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_started(os.getpid())}

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def claim(self, run_id: str, *, strategy: str | None = None, matrix_id: str | None = None) -> Verdict:
        """Claim `run_id` for this process if nobody alive holds it and it still needs running."""
        now = utc_now()
        with self.store.write_transaction() as conn:
            done = conn.execute("SELECT count(*) FROM runs WHERE run_id = ? AND ((status = 'success' AND NOT ?) "
                                "OR finished_at >= ?)", [run_id, self.force, self.since]).fetchall()[0][0]
            if done:
                return Verdict(DONE)
            rows = records(conn.execute("SELECT * FROM claims WHERE run_id = ?", [run_id]))
            held = rows[0] if rows else None
            if held is not None and held["owner"] != self.owner and claim_alive(held, now=now,
                                                                               stale_after=self.stale_after):
                return Verdict(BUSY, _holder(held))
            conn.execute("INSERT OR REPLACE INTO claims (run_id, owner, host, pid, pid_started, command, matrix_id, "
                         "strategy, claimed_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [run_id, self.owner, self._me["host"], self._me["pid"], self._me["pid_started"],
                          self.command, matrix_id, strategy, now, now])
        with self._lock:
            self.held.add(run_id)
        self._start_heartbeat()
        taken_from = held if held is not None and held["owner"] != self.owner else None
        if taken_from is not None:
            log.warning("run %s: took over the claim of %s, which is gone", run_id, _holder(taken_from).text())
        return Verdict(CLAIMED, None if taken_from is None else _holder(taken_from))

    def record(self, record: RunRecord) -> None:
        """Write the run's rows and release our claim on it, in one transaction."""
        run_id = record.run["run_id"]
        self.store.write_run(record, claim_owner=self.owner)
        with self._lock:
            self.held.discard(run_id)

    def release(self, run_ids: set[str] | None = None) -> None:
        """Give up our claims (all of them by default) without recording anything."""
        with self._lock:
            ids = sorted(self.held if run_ids is None else self.held & run_ids)
        if ids:
            with self.store.write_transaction() as conn:
                conn.execute("DELETE FROM claims WHERE owner = ? AND list_contains(?::VARCHAR[], run_id)",
                             [self.owner, ids])
        with self._lock:
            self.held -= set(ids)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=self.heartbeat + 1)
        try:
            self.release()
        except Exception as error:  # noqa: BLE001 - closing must not hide why we are closing (a full disk, Ctrl-C)
            log.warning("could not release claims on %s (%s); other runners take them over once this "
                        "process is gone", self.store.path, str(error).splitlines()[0] if str(error) else error)

    # -- heartbeat ---------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._beat_loop, name="claims-heartbeat", daemon=True)
            self._beat.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                held = bool(self.held)
            if not held:
                continue
            try:
                with self.store.write_transaction() as conn:
                    conn.execute("UPDATE claims SET heartbeat_at = ? WHERE owner = ?", [utc_now(), self.owner])
            except Exception as error:  # noqa: BLE001 - a missed beat is retried; training goes on
                log.debug("claims heartbeat failed: %s", error)


def _holder(row: dict[str, Any]) -> Holder:
    return Holder(host=row["host"], pid=int(row["pid"]), command=row.get("command"),
                  claimed_at=_naive(row["claimed_at"]))


def _naive(value: Any) -> datetime:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=None) if value.tzinfo is not None else value
