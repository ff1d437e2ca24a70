"""The DuckDB warehouse: every run's result rows in one file, written by one process at a time.

Contract (DESIGN.md, "Warehouse (DuckDB) contract"):
- Tables `runs`, `epochs`, `class_metrics`, `confusion`, `predictions`, `matrices`, `claims`
  (which process trains which run: `vjepa_core.store.claims`), `embeddings` (`runner embed`'s
  vectors), `pretrain_runs` and `pretrain_epochs` (`runner pretrain`: one row per run, collapse
  diagnostics per epoch; `write_pretrain` replaces a run's rows in one transaction), plus `meta`
  holding `schema_version`. The schema is `vjepa_core/store/schema.sql` (package data), applied on
  the first write; an older file is upgraded step by step by `migrate` (each step one transaction);
  a file newer than this code is a `UserError` asking to upgrade vjepa-lab.
- `Warehouse.write_run(RunRecord)` replaces every row of one run_id, in every table, in ONE
  transaction: a reader sees the old run or the new one, never a mix, and an error or a crash
  mid-write leaves the previous state. Rows are validated and converted to Arrow before the file
  is opened, then inserted with one INSERT ... SELECT per table. Given the owner of the run's
  claim, the same transaction releases it. `write_transaction()` is that one path for the other
  store modules (claims).
- Values in: JSON columns take dicts/lists/numbers (serialised here, NaN -> null) or JSON text;
  TIMESTAMP columns take datetimes (naive = local time, as `datetime.now()` gives), ISO strings
  or epoch seconds, and store naive UTC; paths and numpy scalars are accepted; a key that is
  not a column is a ValueError.
- Values out: DataFrames keep JSON as text; the dicts of `get_run` and `matrix` decode it.

Concurrency: DuckDB locks the file per process: one read-write process or any number of
read-only ones, never both at once. So every connection here is short-lived (open, work, close),
and opening one retries DuckDB's lock-conflict errors (and only those) with jittered exponential
backoff up to a deadline, then raises `WarehouseBusy`, a UserError naming the path and the PID
holding the lock. A reader therefore waits for at most one write (tens of milliseconds) and the
writer for the readers' queries; keep `read_connection` blocks short, because the writer waits
while one is open. Readers never create the file. Within a process, writes take turns (a lock),
since the claims' heartbeat thread writes too. A disk that refuses a write (full, read-only) raises
`WriteFailed`: one line naming the file and the remedy.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from vjepa_core.errors import UserError
from vjepa_core.paths import WAREHOUSE_ENV
from vjepa_core.store.atomic import staged_file, storage_failure

SCHEMA_VERSION: int = 7
# MIGRATIONS[n] is the SQL that brings a version-n file to version n + 1. Add one whenever
# schema.sql changes; version 1 is the first released schema.
MIGRATIONS: dict[int, str] = {
    # 2: the frozen-backbone token cache's use per run (vjepa_core.store.cache).
    1: "ALTER TABLE runs ADD COLUMN cache_hits BIGINT; ALTER TABLE runs ADD COLUMN cache_misses BIGINT; "
       "ALTER TABLE runs ADD COLUMN encoded_clips BIGINT; ALTER TABLE runs ADD COLUMN cache_bytes BIGINT;",
    # 3: the machine a matrix runs on, so that a reader there can tell a killed matrix from a live one.
    2: "ALTER TABLE matrices ADD COLUMN host VARCHAR;",
    # 4: why a run failed, so that a full disk is retried on the next invocation and a bad spec is not.
    3: "ALTER TABLE runs ADD COLUMN error_kind VARCHAR;",
    # 5: which process trains which run (vjepa_core.store.claims).
    4: "CREATE TABLE claims (run_id VARCHAR PRIMARY KEY, owner VARCHAR NOT NULL, host VARCHAR NOT NULL, "
       "pid INTEGER NOT NULL, pid_started DOUBLE, command VARCHAR, matrix_id VARCHAR, strategy VARCHAR, "
       "claimed_at TIMESTAMP NOT NULL, heartbeat_at TIMESTAMP NOT NULL);",
    # 6: `runner embed`'s vectors, one per video or window, by the fingerprint of what made them.
    5: "CREATE TABLE embeddings (model_fingerprint VARCHAR NOT NULL, video VARCHAR NOT NULL, "
       "start_frame INTEGER NOT NULL, end_frame INTEGER NOT NULL, start_s DOUBLE, end_s DOUBLE, label VARCHAR, "
       "split VARCHAR, dataset VARCHAR, model VARCHAR, source VARCHAR, checkpoint VARCHAR, frames_per_clip INTEGER, "
       "frame_stride INTEGER, window_s DOUBLE, stride_s DOUBLE, dim INTEGER, embedding FLOAT[] NOT NULL, "
       "created_at TIMESTAMP, PRIMARY KEY (model_fingerprint, video, start_frame, end_frame));",
    # 7: self-supervised pretraining runs and their per-epoch collapse diagnostics (vjepa_core.pretrain).
    6: "CREATE TABLE pretrain_runs (pretrain_id VARCHAR PRIMARY KEY, model VARCHAR, dataset VARCHAR, "
       "data_fingerprint VARCHAR, num_videos INTEGER, videos_skipped INTEGER, skipped_videos JSON, "
       "probe_data VARCHAR, epochs INTEGER, batch_size INTEGER, lr DOUBLE, masks VARCHAR, masked_ratio DOUBLE, "
       "status VARCHAR NOT NULL, error VARCHAR, chosen_epoch INTEGER, chosen_by VARCHAR, final_loss DOUBLE, "
       "probe_acc DOUBLE, effective_rank DOUBLE, embedding_std DOUBLE, initial_probe_acc DOUBLE, "
       "initial_effective_rank DOUBLE, initial_embedding_std DOUBLE, started_at TIMESTAMP, finished_at TIMESTAMP, "
       "train_seconds DOUBLE, peak_memory_bytes BIGINT, device VARCHAR, precision VARCHAR, git_sha VARCHAR, "
       "versions JSON, spec JSON, output_path VARCHAR); "
       "CREATE TABLE pretrain_epochs (pretrain_id VARCHAR NOT NULL, epoch INTEGER NOT NULL, loss DOUBLE, "
       "seconds DOUBLE, lr DOUBLE, momentum DOUBLE, embedding_std DOUBLE, effective_rank DOUBLE, "
       "probe_acc DOUBLE, PRIMARY KEY (pretrain_id, epoch));",
}

# A write holds the lock for tens of milliseconds, so a reader that waits 15 s has met something
# else (a DuckDB shell left open). The writer waits far longer: giving up loses a finished run.
READ_TIMEOUT = 15.0
WRITE_TIMEOUT = 120.0
_FIRST_RETRY = 0.002
_MAX_RETRY = 0.05
# A waiting writer refreshes its flag every retry, so an older flag was left by a dead writer.
_FLAG_FRESH = 1.0
# Readers give way to a waiting writer for this long at most: if the writer is itself stuck
# behind a foreign reader (a DuckDB shell left open), the dashboard must not be stuck with it.
_YIELD_TO_WRITER = 2.0

RUN_STATUSES = ("success", "failed")
# runs.error_kind of a failed run: the disk refused a write (retried on the next invocation), or anything else.
ERROR_KINDS = ("storage", "error")
WAREHOUSE_ELSEWHERE = f"pass --warehouse (or {WAREHOUSE_ENV}) on another disk"
EXPORT_ELSEWHERE = "pass --out on another disk"
MATRIX_STATUSES = ("running", "finished", "interrupted")
RUN_TABLES = ("runs", "epochs", "class_metrics", "confusion", "predictions")
PRETRAIN_TABLES = ("pretrain_runs", "pretrain_epochs")
TABLES = (*RUN_TABLES, "matrices", "embeddings", *PRETRAIN_TABLES)
EMBEDDING_KEY = ("model_fingerprint", "video", "start_frame", "end_frame")
_ORDER_BY = {
    "runs": "started_at NULLS LAST, run_id",
    "epochs": "run_id, epoch",
    "class_metrics": "run_id, split, class_name",
    "confusion": "run_id, split, true_class, pred_class",
    "predictions": "run_id, split, video",
    "matrices": "started_at NULLS LAST, matrix_id",
    "embeddings": "model_fingerprint, video, start_frame, end_frame",
    "pretrain_runs": "started_at NULLS LAST, pretrain_id",
    "pretrain_epochs": "pretrain_id, epoch",
}
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "FLOAT[]": pa.list_(pa.float32()),
}

Connection = duckdb.DuckDBPyConnection
T = TypeVar("T")
_PROCESS_WRITER = threading.RLock()


class WarehouseBusy(UserError):
    """Another connection held the warehouse's lock for longer than the timeout."""


class SchemaOutdated(UserError):
    """The file's schema is older than this code; any write (or `Warehouse.migrate`) upgrades it."""


@dataclass
class RunRecord:
    """Everything one run leaves in the warehouse; keys are column names, missing ones are NULL."""

    run: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    class_metrics: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)


class Warehouse:
    """One warehouse file. Holds no connection: each call opens one, does its work and closes it."""

    def __init__(
        self, path: str | Path, *, read_timeout: float = READ_TIMEOUT, write_timeout: float = WRITE_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # -- writes -------------------------------------------------------------------------------

    def write_run(self, record: RunRecord, *, claim_owner: str | None = None) -> None:
        """Replace all rows of `record`'s run_id with its rows, in one transaction.

        With `claim_owner`, the same transaction releases that owner's claim on the run
        (`vjepa_core.store.claims`): no moment where the run is neither claimed nor recorded.
        """
        run_id, tables = _record_tables(record)
        with self.write_transaction() as conn:
            for table in RUN_TABLES:
                conn.execute(f'DELETE FROM "{table}" WHERE run_id = ?', [run_id])
            for table, rows in tables.items():
                _insert(conn, table, rows)
            if claim_owner is not None:
                conn.execute("DELETE FROM claims WHERE run_id = ? AND owner = ?", [run_id, claim_owner])

    def write_pretrain(self, run: dict[str, Any], epochs: list[dict[str, Any]]) -> None:
        """Replace a pretraining run's row and its per-epoch diagnostics, in one transaction."""
        pretrain_id = run.get("pretrain_id")
        if not isinstance(pretrain_id, str) or not pretrain_id:
            raise ValueError("a pretraining run needs a non-empty string pretrain_id")
        if run.get("status") not in RUN_STATUSES:
            raise ValueError(f"pretraining run {pretrain_id}: status must be one of {', '.join(RUN_STATUSES)}")
        tables = {"pretrain_runs": _arrow_rows("pretrain_runs", [run]),
                  "pretrain_epochs": _arrow_rows("pretrain_epochs", [
                      _owned(row, pretrain_id, "pretrain_epochs", key="pretrain_id") for row in epochs])}
        with self.write_transaction() as conn:
            for table, rows in tables.items():
                conn.execute(f'DELETE FROM "{table}" WHERE pretrain_id = ?', [pretrain_id])
                _insert(conn, table, rows)

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A read-write connection to the up-to-date file, inside one transaction (rolled back on error)."""
        with self._writing() as conn, _transaction(conn):
            yield conn

    def upsert_matrix(self, matrix: dict[str, Any]) -> None:
        """Insert a `matrices` row, or update only the given columns of an existing one.

        `updated_at` defaults to now, so that the dashboard can tell a live matrix from a dead one.
        """
        if not matrix.get("matrix_id"):
            raise ValueError("upsert_matrix needs a non-empty matrix_id")
        status = matrix.get("status")
        if status is not None and status not in MATRIX_STATUSES:
            raise ValueError(f"matrix status must be one of {', '.join(MATRIX_STATUSES)}, got {status!r}")
        rows = _arrow_rows("matrices", [{"updated_at": datetime.now(timezone.utc), **matrix}])
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in rows.column_names if name != "matrix_id")
        with self._writing() as conn:
            _insert(conn, "matrices", rows, on_conflict=f"ON CONFLICT (matrix_id) DO UPDATE SET {updates}")

    def write_embeddings(self, rows: pd.DataFrame, vectors: np.ndarray) -> int:
        """Insert one `embeddings` row per row of `rows` with its vector (`vectors[i]`), replacing rows
        with the same key (model fingerprint, video, frame span), in one transaction. Returns the count."""
        if len(rows) != len(vectors):
            raise ValueError(f"embeddings: {len(rows)} rows but {len(vectors)} vectors")
        if not len(rows):
            return 0
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        table = _arrow_rows("embeddings", records).append_column("embedding", vector_column(vectors))
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in table.column_names if name not in EMBEDDING_KEY)
        with self._writing() as conn, _transaction(conn):
            _insert(conn, "embeddings", table,
                    on_conflict=f"ON CONFLICT ({', '.join(EMBEDDING_KEY)}) DO UPDATE SET {updates}")
        return table.num_rows

    def embeddings(self, model_fingerprint: str | None = None) -> pd.DataFrame:
        """`embeddings` rows (of one fingerprint if given), the vector as a list per row."""
        where, params = ("WHERE model_fingerprint = ?", [model_fingerprint]) if model_fingerprint else ("", [])
        sql = f"SELECT * FROM embeddings {where} ORDER BY {_ORDER_BY['embeddings']}"
        return self._read(lambda conn: conn.execute(sql, params).df())

    def migrate(self) -> int:
        """Create or upgrade the file to SCHEMA_VERSION now; return the version it had (0 = new)."""
        with _write_connection(self.path, timeout=self.write_timeout) as conn:
            return migrate(conn)

    # -- reads --------------------------------------------------------------------------------

    def completed_run_ids(self, run_ids: Iterable[str] | None = None) -> set[str]:
        """Ids with status 'success' (among `run_ids` if given). No warehouse yet: none completed."""
        wanted = None if run_ids is None else list(run_ids)
        if wanted == [] or not self.path.exists():
            return set()
        sql = "SELECT run_id FROM runs WHERE status = 'success'"
        params: list[Any] = []
        if wanted is not None:
            sql += " AND list_contains(?::VARCHAR[], run_id)"
            params = [wanted]
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        return {row[0] for row in rows}

    def get_run(self, run_id_or_prefix: str) -> dict[str, Any] | None:
        """The run whose id is, or uniquely starts with, the argument; None if no id matches."""
        prefix = run_id_or_prefix.strip()
        if not prefix:
            raise UserError("empty run id")
        sql = "SELECT * FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 6"
        rows = self._read(lambda conn: _records(conn.execute(sql, [prefix])))
        exact = [row for row in rows if row["run_id"] == prefix]
        if exact or len(rows) == 1:
            return _decode_json("runs", (exact or rows)[0])
        if not rows:
            return None
        shown = ", ".join(row["run_id"] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise UserError(f"run id prefix {prefix!r} is ambiguous in {self.path}: matches {shown}")

    def runs(
        self,
        *,
        matrix_id: str | None = None,
        strategy: str | None = None,
        status: str | None = None,
        dataset: str | None = None,
        model: str | None = None,
    ) -> pd.DataFrame:
        """`runs` rows matching every filter that is not None, oldest first."""
        given = {"matrix_id": matrix_id, "strategy": strategy, "status": status, "dataset": dataset, "model": model}
        filters = {name: value for name, value in given.items() if value is not None}
        where = " AND ".join(f'"{name}" = ?' for name in filters) or "TRUE"
        sql = f"SELECT * FROM runs WHERE {where} ORDER BY {_ORDER_BY['runs']}"
        return self._read(lambda conn: conn.execute(sql, list(filters.values())).df())

    def table(self, name: str, run_id: str | None = None) -> pd.DataFrame:
        """All rows of one run table (`epochs`, `class_metrics`, ...), or only those of `run_id`."""
        if name not in RUN_TABLES:
            raise UserError(f"unknown warehouse table {name!r}; choose one of {', '.join(RUN_TABLES)}")
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        sql = f'SELECT * FROM "{name}" {where} ORDER BY {_ORDER_BY[name]}'
        return self._read(lambda conn: conn.execute(sql, params).df())

    def pretrain_table(self, name: str, pretrain_id: str | None = None) -> pd.DataFrame:
        """`pretrain_runs` or `pretrain_epochs` rows (of one pretraining run if given); empty without a file."""
        if name not in PRETRAIN_TABLES:
            raise UserError(f"unknown pretraining table {name!r}; choose one of {', '.join(PRETRAIN_TABLES)}")
        if not self.path.exists():
            return pd.DataFrame(columns=list(_catalog()[name]))
        where, params = ("WHERE pretrain_id = ?", [pretrain_id]) if pretrain_id is not None else ("", [])
        sql = f'SELECT * FROM "{name}" {where} ORDER BY {_ORDER_BY[name]}'
        return self._read(lambda conn: conn.execute(sql, params).df())

    def claims(self) -> pd.DataFrame:
        """Every claim (which process trains which run), oldest first; none without a warehouse."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(_catalog()["claims"]))
        return self._read(lambda conn: conn.execute("SELECT * FROM claims ORDER BY claimed_at, run_id").df())

    def matrices(self) -> pd.DataFrame:
        sql = f"SELECT * FROM matrices ORDER BY {_ORDER_BY['matrices']}"
        return self._read(lambda conn: conn.execute(sql).df())

    def matrix(self, matrix_id: str) -> dict[str, Any] | None:
        sql = "SELECT * FROM matrices WHERE matrix_id = ?"
        rows = self._read(lambda conn: _records(conn.execute(sql, [matrix_id])))
        return _decode_json("matrices", rows[0]) if rows else None

    def export(self, out_dir: Path, fmt: Literal["csv", "parquet"]) -> list[Path]:
        """Write `<table>.<fmt>` for every table into `out_dir`, all from one snapshot.

        All or nothing: every file is written under a temporary name first, and only once all of
        them are complete are they renamed into place; a failure (a full disk) removes them all.
        """
        if fmt not in ("csv", "parquet"):
            raise UserError(f"unknown export format {fmt!r}; choose csv or parquet")
        out_dir = Path(out_dir)
        targets = [out_dir / f"{table}.{fmt}" for table in TABLES]
        created = not out_dir.exists()
        try:
            with ExitStack() as stack:
                staged = [stack.enter_context(staged_file(target, elsewhere=EXPORT_ELSEWHERE)) for target in targets]
                self._read(lambda conn: [_copy_table(conn, table, tmp, fmt)
                                         for table, tmp in zip(TABLES, staged, strict=True)])
        except BaseException:
            if created and out_dir.is_dir() and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise
        return targets

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with _write_connection(self.path, timeout=self.write_timeout) as conn:
            migrate(conn)
            yield conn

    def _read(self, work: Callable[[Connection], T]) -> T:
        # Only a writer can upgrade an old file; this object may write, so it does, once.
        try:
            with read_connection(self.path, timeout=self.read_timeout) as conn:
                return work(conn)
        except SchemaOutdated:
            self.migrate()
        with read_connection(self.path, timeout=self.read_timeout) as conn:
            return work(conn)


def vector_column(vectors: np.ndarray) -> pa.ListArray:
    """float32 [rows, D] -> an Arrow list<float> column (DuckDB's FLOAT[]), without a Python list per row."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    return pa.ListArray.from_arrays(pa.array(np.arange(len(vectors) + 1, dtype=np.int32) * dim), flat)


# -- connections and the schema ------------------------------------------------------------------


@contextmanager
def read_connection(path: str | Path, *, timeout: float = READ_TIMEOUT) -> Iterator[Connection]:
    """A read-only connection to an up-to-date warehouse, closed on exit. Keep the block short.

    One block is one consistent snapshot: no writer can commit while it is open.
    """
    path = Path(path)
    conn = _open_read(path, timeout=timeout)
    try:
        _check_readable(conn, path)
        yield conn
    finally:
        conn.close()


def schema_version(path: str | Path, *, timeout: float = READ_TIMEOUT) -> int | None:
    """The file's schema version: None if there is no file, 0 if it has no vjepa-lab schema."""
    path = Path(path)
    if not path.exists():
        return None
    conn = _open_read(path, timeout=timeout)
    try:
        return _stored_version(conn)
    finally:
        conn.close()


def migrate(conn: Connection) -> int:
    """Bring the read-write `conn`'s file to SCHEMA_VERSION; return the version it had (0 = new)."""
    version = _stored_version(conn)
    if version == 0:
        _create_schema(conn)
        return 0
    if version > SCHEMA_VERSION:
        raise _newer_error(version, _conn_path(conn))
    for step in range(version, SCHEMA_VERSION):
        if step not in MIGRATIONS:
            raise RuntimeError(f"no migration from warehouse schema version {step} to {step + 1}")
        with _transaction(conn):
            conn.execute(MIGRATIONS[step])
            _set_version(conn, step + 1)
    return version


@cache
def schema_sql() -> str:
    return resources.files("vjepa_core.store").joinpath("schema.sql").read_text(encoding="utf-8")


@cache
def _catalog() -> dict[str, dict[str, str]]:
    """Table -> column -> DuckDB type of the current schema, read from an in-memory copy of it."""
    with duckdb.connect(":memory:") as conn:
        conn.execute(schema_sql())
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
    catalog: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        catalog.setdefault(table, {})[column] = dtype
    return catalog


def _create_schema(conn: Connection) -> None:
    if _has_tables(conn):
        raise _foreign_error(_conn_path(conn))
    with _transaction(conn):
        conn.execute(schema_sql())
        _set_version(conn, SCHEMA_VERSION)


def _stored_version(conn: Connection) -> int:
    # One query, because every connection asks: it is on the path of every read and write.
    try:
        return int(_scalar(conn, "SELECT value FROM meta WHERE key = 'schema_version'") or 0)
    except duckdb.CatalogException:  # no meta table: a new empty file, or not a warehouse
        return 0


def _has_tables(conn: Connection) -> bool:
    return bool(_scalar(conn, "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"))


def _scalar(conn: Connection, sql: str) -> Any:
    # fetchall, not fetchone: DuckDB 2 refuses other work on a connection with an unfinished result.
    rows = conn.execute(sql).fetchall()
    return rows[0][0] if rows else None


def _set_version(conn: Connection, version: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])


def _foreign_error(path: Path | str) -> UserError:
    return UserError(f"{path} is a DuckDB file but not a vjepa-lab warehouse (tables without a schema version)")


def _newer_error(version: int, path: Path | str) -> UserError:
    return UserError(
        f"warehouse {path} has schema version {version}, newer than this vjepa-lab's {SCHEMA_VERSION}:"
        " upgrade vjepa-lab to use it"
    )


def _check_readable(conn: Connection, path: Path) -> None:
    version = _stored_version(conn)
    if version == 0 and _has_tables(conn):
        raise _foreign_error(path)
    if version > SCHEMA_VERSION:
        raise _newer_error(version, path)
    if version < SCHEMA_VERSION:
        raise SchemaOutdated(
            f"warehouse {path} has schema version {version}, older than this vjepa-lab's {SCHEMA_VERSION}:"
            " any write (e.g. `runner run`) upgrades it"
        )


def _conn_path(conn: Connection) -> str:
    return str(_scalar(conn, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"))


def _open_read(path: Path, *, timeout: float) -> Connection:
    # Checked here, not left to DuckDB, for a message that says what to do; readers never create it.
    if not path.is_file():
        raise UserError(f"no warehouse at {path}: run `runner run` first, or pass --warehouse / set {WAREHOUSE_ENV}")
    return _connect(path, read_only=True, timeout=timeout)


@contextmanager
def _write_connection(path: Path, *, timeout: float) -> Iterator[Connection]:
    """A read-write connection, closed on exit; a disk that refuses the write raises `WriteFailed`.

    One at a time per process: a second thread (the claims' heartbeat) would otherwise share the
    database instance and could meet the first one's transaction as a write-write conflict.
    """
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


def _try_connect(path: Path, *, read_only: bool) -> Connection | str:
    """A connection, or who holds the lock if that is the only problem; other errors raise."""
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


def _open_error(path: Path, error: duckdb.Error) -> Exception:
    # Not a valid DuckDB file, written by a newer DuckDB, no permission: the user can fix these.
    if isinstance(error, duckdb.IOException):
        return UserError(f"cannot open warehouse {path}: {str(error).splitlines()[0]}")
    return error


@contextmanager
def _transaction(conn: Connection) -> Iterator[None]:
    conn.begin()
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


# -- rows in and out ------------------------------------------------------------------------------


def _record_tables(record: RunRecord) -> tuple[str, dict[str, pa.Table]]:
    run_id = record.run.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("RunRecord.run needs a non-empty string run_id")
    status = record.run.get("status")
    if status not in RUN_STATUSES:
        raise ValueError(f"run {run_id}: status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    details = {
        "epochs": record.epochs,
        "class_metrics": record.class_metrics,
        "confusion": record.confusion,
        "predictions": record.predictions,
    }
    tables = {"runs": _arrow_rows("runs", [record.run])}
    for table, rows in details.items():
        tables[table] = _arrow_rows(table, [_owned(row, run_id, table) for row in rows])
    return run_id, tables


def _owned(row: dict[str, Any], run_id: str, table: str, *, key: str = "run_id") -> dict[str, Any]:
    if row.get(key, run_id) != run_id:
        raise ValueError(f"{table} row of run {row[key]!r} in the record of run {run_id!r}")
    return {**row, key: run_id}


def _arrow_rows(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """`rows` as an Arrow table typed like the warehouse columns they name; ValueError if they can't be."""
    columns = _catalog()[table]
    unknown = sorted({key for row in rows for key in row} - set(columns))
    if unknown:
        raise ValueError(f"{table}: unknown column(s) {', '.join(unknown)}")
    arrays = {}
    for name, dtype in columns.items():
        if not any(name in row for row in rows):
            continue
        try:
            values = [_cell(row.get(name), dtype) for row in rows]
            # Infer, then cast safely: pa.array(values, type=int32) would truncate 2.7 to 2.
            arrays[name] = pa.array(values).cast(_ARROW_TYPES[dtype])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{table}.{name} ({dtype}): {error}") from error
    return pa.table(arrays)


def _cell(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if dtype == "JSON":
        return value if isinstance(value, str) else json.dumps(_jsonable(value), default=str)
    if dtype == "TIMESTAMP":
        return _utc_naive(value)
    if isinstance(value, PurePath):
        return str(value)
    return value


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy to Python, NaN/inf to null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _utc_naive(value: Any) -> Any:
    if isinstance(value, str):
        # Python 3.10's fromisoformat does not read a trailing Z.
        value = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        # A naive datetime is local time, as datetime.now() gives and as astimezone() reads it.
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _insert(conn: Connection, table: str, rows: pa.Table, *, on_conflict: str = "") -> None:
    if rows.num_rows == 0:
        return
    names = ", ".join(f'"{name}"' for name in rows.column_names)
    conn.register("_incoming", rows)
    conn.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _incoming {on_conflict}')
    # Not in a `finally`: after a failed INSERT the transaction refuses even this, which would
    # hide the real error; the connection, and the view with it, is about to be closed anyway.
    conn.unregister("_incoming")


def _records(result: Connection) -> list[dict[str, Any]]:
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _decode_json(table: str, record: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(record)
    for name, dtype in _catalog()[table].items():
        if dtype == "JSON" and isinstance(decoded.get(name), str):
            decoded[name] = json.loads(decoded[name])
    return decoded


def _copy_table(conn: Connection, table: str, target: Path, fmt: str) -> Path:
    quoted = "'" + str(target).replace("'", "''") + "'"
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"
    conn.execute(f'COPY (SELECT * FROM "{table}" ORDER BY {_ORDER_BY[table]}) TO {quoted} ({options})')
    return target
