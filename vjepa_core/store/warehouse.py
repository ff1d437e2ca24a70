"""The DuckDB warehouse's front door: every run's result rows in one file, written by one process at a time.

`Warehouse` is the file's only writer (docs/architecture.md, "Contracts"). Each write replaces what it owns in
ONE transaction (a run's rows in every table, with its claim released; a pretraining run; embeddings; a
matrix row), so that a reader sees the old state or the new one, never a mix, and a crash mid-write leaves
the previous state; every write first brings an older file up to date. Readers that never write (the
dashboard, the demo) take one consistent read-only snapshot with `read_connection`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from vjepa_core.errors import UserError
from vjepa_core.store.atomic import staged_file
from vjepa_core.store.locking import READ_TIMEOUT, WRITE_TIMEOUT, Connection, open_read, transaction, write_connection
from vjepa_core.store.rows import arrow_rows, decode_json, insert, owned, records, vector_column
from vjepa_core.store.schema import (
    EMBEDDING_KEY,
    MATRIX_STATUSES,
    PRETRAIN_TABLES,
    RUN_STATUSES,
    RUN_TABLES,
    TABLES,
    SchemaOutdated,
    catalog,
    check_readable,
    migrate,
    stored_version,
)

EXPORT_ELSEWHERE = "pass --out on another disk"
_ORDER_BY = {
    "runs": "started_at NULLS LAST, run_id",
    "epochs": "run_id, epoch",
    "class_metrics": "run_id, split, class_name",
    "confusion": "run_id, split, true_class, pred_class",
    "predictions": "run_id, split, video",
    "matrices": "started_at NULLS LAST, matrix_id",
    "embeddings": "model_fingerprint, video, start_frame, end_frame",
    "embedding_skips": "model_fingerprint, window_s NULLS FIRST, stride_s, video",
    "pretrain_runs": "started_at NULLS LAST, pretrain_id",
    "pretrain_epochs": "pretrain_id, epoch",
}

T = TypeVar("T")


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
                insert(conn, table, rows)
            if claim_owner is not None:
                conn.execute("DELETE FROM claims WHERE run_id = ? AND owner = ?", [run_id, claim_owner])

    def write_pretrain(self, run: dict[str, Any], epochs: list[dict[str, Any]]) -> None:
        """Replace a pretraining run's row and its per-epoch diagnostics, in one transaction."""
        pretrain_id = run.get("pretrain_id")
        if not isinstance(pretrain_id, str) or not pretrain_id:
            raise ValueError("a pretraining run needs a non-empty string pretrain_id")
        if run.get("status") not in RUN_STATUSES:
            raise ValueError(f"pretraining run {pretrain_id}: status must be one of {', '.join(RUN_STATUSES)}")
        tables = {"pretrain_runs": arrow_rows("pretrain_runs", [run]),
                  "pretrain_epochs": arrow_rows("pretrain_epochs", [
                      owned(row, pretrain_id, "pretrain_epochs", key="pretrain_id") for row in epochs])}
        with self.write_transaction() as conn:
            for table, rows in tables.items():
                conn.execute(f'DELETE FROM "{table}" WHERE pretrain_id = ?', [pretrain_id])
                insert(conn, table, rows)

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A read-write connection to the up-to-date file, inside one transaction (rolled back on error)."""
        with self._writing() as conn, transaction(conn):
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
        rows = arrow_rows("matrices", [{"updated_at": datetime.now(timezone.utc), **matrix}])
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in rows.column_names if name != "matrix_id")
        with self._writing() as conn:
            insert(conn, "matrices", rows, on_conflict=f"ON CONFLICT (matrix_id) DO UPDATE SET {updates}")

    def write_embeddings(self, rows: pd.DataFrame, vectors: np.ndarray, skipped: pd.DataFrame | None = None) -> int:
        """Insert one `embeddings` row per row of `rows` with its vector (`vectors[i]`), replacing rows
        with the same key (model fingerprint, video, frame span), and record `skipped` (`embedding_skips`
        rows: the files of the same sets that could not be embedded), in one transaction. A set's earlier
        skip rows for the files written now, embedded or skipped, are replaced. Returns the vectors' count."""
        if len(rows) != len(vectors):
            raise ValueError(f"embeddings: {len(rows)} rows but {len(vectors)} vectors")
        skipped = skipped if skipped is not None else pd.DataFrame()
        if not len(rows) and not len(skipped):
            return 0
        table = arrow_rows("embeddings", _records(rows)).append_column("embedding", vector_column(vectors))
        skips = arrow_rows("embedding_skips", _records(skipped))
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in table.column_names if name not in EMBEDDING_KEY)
        touched = _set_videos(rows, skipped)
        with self._writing() as conn, transaction(conn):
            if touched.num_rows:
                conn.register("_touched", touched)
                conn.execute("DELETE FROM embedding_skips AS s USING _touched AS t WHERE s.video = t.video AND "
                             "s.model_fingerprint = t.model_fingerprint AND s.window_s IS NOT DISTINCT FROM "
                             "t.window_s AND s.stride_s IS NOT DISTINCT FROM t.stride_s")
                conn.unregister("_touched")
            insert(conn, "embeddings", table,
                   on_conflict=f"ON CONFLICT ({', '.join(EMBEDDING_KEY)}) DO UPDATE SET {updates}")
            insert(conn, "embedding_skips", skips)
        return table.num_rows

    def embedding_skips(self, model_fingerprint: str | None = None) -> pd.DataFrame:
        """`embedding_skips` rows (of one fingerprint if given): the files `runner embed` could not embed."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(catalog()["embedding_skips"]))
        where, params = ("WHERE model_fingerprint = ?", [model_fingerprint]) if model_fingerprint else ("", [])
        sql = f"SELECT * FROM embedding_skips {where} ORDER BY {_ORDER_BY['embedding_skips']}"
        return self._read(lambda conn: conn.execute(sql, params).df())

    def embeddings(self, model_fingerprint: str | None = None) -> pd.DataFrame:
        """`embeddings` rows (of one fingerprint if given), the vector as a list per row."""
        where, params = ("WHERE model_fingerprint = ?", [model_fingerprint]) if model_fingerprint else ("", [])
        sql = f"SELECT * FROM embeddings {where} ORDER BY {_ORDER_BY['embeddings']}"
        return self._read(lambda conn: conn.execute(sql, params).df())

    def migrate(self) -> int:
        """Create or upgrade the file to SCHEMA_VERSION now; return the version it had (0 = new)."""
        with write_connection(self.path, timeout=self.write_timeout) as conn:
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
        rows = self._read(lambda conn: records(conn.execute(sql, [prefix])))
        exact = [row for row in rows if row["run_id"] == prefix]
        if exact or len(rows) == 1:
            return decode_json("runs", (exact or rows)[0])
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
            return pd.DataFrame(columns=list(catalog()[name]))
        where, params = ("WHERE pretrain_id = ?", [pretrain_id]) if pretrain_id is not None else ("", [])
        sql = f'SELECT * FROM "{name}" {where} ORDER BY {_ORDER_BY[name]}'
        return self._read(lambda conn: conn.execute(sql, params).df())

    def claims(self) -> pd.DataFrame:
        """Every claim (which process trains which run), oldest first; none without a warehouse."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(catalog()["claims"]))
        return self._read(lambda conn: conn.execute("SELECT * FROM claims ORDER BY claimed_at, run_id").df())

    def matrices(self) -> pd.DataFrame:
        sql = f"SELECT * FROM matrices ORDER BY {_ORDER_BY['matrices']}"
        return self._read(lambda conn: conn.execute(sql).df())

    def matrix(self, matrix_id: str) -> dict[str, Any] | None:
        sql = "SELECT * FROM matrices WHERE matrix_id = ?"
        rows = self._read(lambda conn: records(conn.execute(sql, [matrix_id])))
        return decode_json("matrices", rows[0]) if rows else None

    def export(self, out_dir: Path, fmt: Literal["csv", "parquet"]) -> list[Path]:
        """Write `<table>.<fmt>` for every table into `out_dir`, all from one snapshot.

        All or nothing: every file is written under a temporary name first, and only once all of
        them are complete are they renamed into place; a failure (a full disk) removes them all.
        """
        if fmt not in ("csv", "parquet"):
            raise UserError(f"unknown export format {fmt!r}; choose csv or parquet")
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir} is a file: export writes one file per table into a folder; name a folder")
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
        with write_connection(self.path, timeout=self.write_timeout) as conn:
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


@contextmanager
def read_connection(path: str | Path, *, timeout: float = READ_TIMEOUT) -> Iterator[Connection]:
    """A read-only connection to an up-to-date warehouse, closed on exit. Keep the block short.

    One block is one consistent snapshot: no writer can commit while it is open.
    """
    path = Path(path)
    conn = open_read(path, timeout=timeout)
    try:
        check_readable(conn, path)
        yield conn
    finally:
        conn.close()


def schema_version(path: str | Path, *, timeout: float = READ_TIMEOUT) -> int | None:
    """The file's schema version: None if there is no file, 0 if it has no vjepa-lab schema."""
    path = Path(path)
    if not path.exists():
        return None
    conn = open_read(path, timeout=timeout)
    try:
        return stored_version(conn)
    finally:
        conn.close()


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
    tables = {"runs": arrow_rows("runs", [record.run])}
    for table, rows in details.items():
        tables[table] = arrow_rows(table, [owned(row, run_id, table) for row in rows])
    return run_id, tables


def _copy_table(conn: Connection, table: str, target: Path, fmt: str) -> Path:
    quoted = "'" + str(target).replace("'", "''") + "'"
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"
    conn.execute(f'COPY (SELECT * FROM "{table}" ORDER BY {_ORDER_BY[table]}) TO {quoted} ({options})')
    return target


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame's rows as dicts, missing values as None."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _set_videos(rows: pd.DataFrame, skipped: pd.DataFrame) -> pa.Table:
    """(model_fingerprint, window_s, stride_s, video) of every file a write of embeddings covers."""
    keys = ["model_fingerprint", "window_s", "stride_s", "video"]
    frames = [frame.reindex(columns=keys) for frame in (rows, skipped) if len(frame)]
    touched = pd.concat(frames).drop_duplicates() if frames else pd.DataFrame(columns=keys)
    return arrow_rows("embedding_skips", _records(touched)) if len(touched) else pa.table({})
