"""The warehouse file's lock-and-retry protocol: short connections that wait their turn.

DuckDB locks a file per process (one writer or many readers, never both), so every connection is short-lived,
and opening one retries lock conflicts with jittered backoff up to a deadline, then raises `WarehouseBusy`
naming the path and the pid holding it. A waiting writer raises a flag beside the file so that new readers
give way to it; within a process, writes take turns. Only `Warehouse` opens a read-write connection.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from vjepa_core.errors import UserError
from vjepa_core.paths import WAREHOUSE_ENV
from vjepa_core.store.atomic import storage_failure

# A write holds the lock briefly, so a reader that waits READ_TIMEOUT has met something else (a DuckDB
# shell left open). The writer waits far longer: giving up loses a finished run.
READ_TIMEOUT = 15.0
WRITE_TIMEOUT = 120.0
_FIRST_RETRY = 0.002
_MAX_RETRY = 0.05
# A waiting writer refreshes its flag every retry, so an older flag was left by a dead writer.
_FLAG_FRESH = 1.0
# Readers give way to a waiting writer for this long at most: if the writer is itself stuck
# behind a foreign reader (a DuckDB shell left open), the dashboard must not be stuck with it.
_YIELD_TO_WRITER = 2.0
WAREHOUSE_ELSEWHERE = f"pass --warehouse (or {WAREHOUSE_ENV}) on another disk"

Connection = duckdb.DuckDBPyConnection
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PROCESS_WRITER = threading.RLock()


class WarehouseBusy(UserError):
    """Another connection held the warehouse's lock for longer than the timeout."""


def open_read(path: Path, *, timeout: float) -> Connection:
    # Checked here, not left to DuckDB, for a message that says what to do; readers never create it.
    _refuse_folder(path)
    if not path.is_file():
        raise UserError(f"no warehouse at {path}: run `runner run` first, or pass --warehouse / set {WAREHOUSE_ENV}")
    return _connect(path, read_only=True, timeout=timeout)


@contextmanager
def write_connection(path: Path, *, timeout: float) -> Iterator[Connection]:
    """A read-write connection, closed on exit; a disk that refuses the write raises `WriteFailed`.

    One at a time per process: a second thread (the claims' heartbeat) would otherwise share the
    database instance and could meet the first one's transaction as a write-write conflict.
    """
    _refuse_folder(path)
    try:
        with _PROCESS_WRITER:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path, read_only=False, timeout=timeout)
            try:
                yield conn
            finally:
                # Closing releases the file lock; it also checkpoints the WAL into the file.
                conn.close()
    except (OSError, duckdb.Error) as error:
        failure = storage_failure(error, path, elsewhere=WAREHOUSE_ELSEWHERE)
        if failure is None:
            raise
        raise failure from error


def _connect(path: Path, *, read_only: bool, timeout: float) -> Connection:
    """Open `path`, retrying lock conflicts with jittered exponential backoff until `timeout`.

    A writer that meets a conflict raises a flag beside the file (refreshed on every retry, gone
    once it is in) and new readers hold off while the flag is fresh, for up to _YIELD_TO_WRITER:
    without it, a reader polling in a tight loop holds the shared lock most of the time and the
    writer only gets in by luck.
    """
    deadline = time.monotonic() + timeout
    yield_until = time.monotonic() + _YIELD_TO_WRITER if read_only else 0.0
    flag = _writer_flag(path)
    delay = _FIRST_RETRY
    flagged = False
    try:
        while True:
            holder = _waiting_writer(flag) if time.monotonic() < yield_until else None
            if holder is None:
                conn_or_holder = _try_connect(path, read_only=read_only)
                if isinstance(conn_or_holder, Connection):
                    return conn_or_holder
                holder = conn_or_holder
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseBusy(
                    f"warehouse {path} is locked by {holder}; gave up after {timeout:g} s"
                    " (close that program, or retry when it is done)"
                )
            if not read_only:
                flag.write_text(str(os.getpid()))
                flagged = True
            # Jitter keeps a polling reader and the writer from retrying in lockstep.
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, _MAX_RETRY)
    finally:
        if flagged:
            flag.unlink(missing_ok=True)


def _refuse_folder(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"warehouse {path} is a folder; the warehouse is one DuckDB file: pass --warehouse "
                        f"{path / 'warehouse.duckdb'} (or set {WAREHOUSE_ENV})")


def _try_connect(path: Path, *, read_only: bool) -> Connection | str:
    """A connection, or who holds the lock if that is the only problem; other errors raise."""
    if _is_sqlite(path):  # DuckDB would fetch its SQLite extension from the internet to open it
        raise UserError(f"cannot open warehouse {path}: it is an SQLite database, not a DuckDB file")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:
        if not _is_lock_conflict(error):
            raise _open_error(path, error) from error
        return _lock_holder(error)


def _writer_flag(path: Path) -> Path:
    return path.with_name(path.name + ".writer-waiting")


def _waiting_writer(flag: Path) -> str | None:
    """Who is waiting to write, if a writer raised the flag recently; a stale flag is ignored."""
    try:
        age = time.time() - flag.stat().st_mtime
        pid = flag.read_text().strip()
    except OSError:  # no flag, or it went between the two calls: nobody waiting
        return None
    return f"a waiting writer (PID {pid})" if age < _FLAG_FRESH else None


def _is_lock_conflict(error: duckdb.Error) -> bool:
    """True only for DuckDB's two ways of saying "the file is open elsewhere in the other mode"."""
    # Another process holds it: IOException 'Could not set lock on file "...": Conflicting lock
    # is held in <program> (PID n)'. This process holds it in the other mode: ConnectionException
    # "Can't open a connection to same database file with a different configuration than
    # existing connections".
    if isinstance(error, duckdb.IOException):
        return "Could not set lock on file" in str(error)
    if isinstance(error, duckdb.ConnectionException):
        return "different configuration than existing connections" in str(error)
    return False


def _lock_holder(error: duckdb.Error) -> str:
    match = re.search(r"held in (\S+) \(PID (\d+)\)", str(error))
    if match:
        return f"PID {match.group(2)} ({Path(match.group(1)).name})"
    return "another connection in this process"


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:  # missing (a writer creates it) or unreadable (DuckDB says so)
        return False


def _open_error(path: Path, error: duckdb.Error) -> Exception:
    # Not a valid DuckDB file, written by a newer DuckDB, no permission: the user can fix these.
    if isinstance(error, duckdb.IOException):
        return UserError(f"cannot open warehouse {path}: {str(error).splitlines()[0]}")
    return error


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    conn.begin()
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
