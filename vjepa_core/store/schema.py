"""The warehouse's schema: its tables (`schema.sql`, package data), its version, and the steps that upgrade an
older file. The first write applies the schema; `migrate` upgrades an older file one version at a time, each
step one transaction; a file newer than this code is a `UserError` asking to upgrade vjepa-lab.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from vjepa_core.errors import UserError
from vjepa_core.store.locking import Connection, transaction

SCHEMA_VERSION: int = 9
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
    # 8: when a matrix's process started, so that a reused pid does not keep a killed matrix 'running'.
    7: "ALTER TABLE matrices ADD COLUMN pid_started DOUBLE;",
    # 9: the files `runner embed` skipped, by the set of vectors that lacks them.
    8: "CREATE TABLE embedding_skips (model_fingerprint VARCHAR NOT NULL, video VARCHAR NOT NULL, window_s DOUBLE, "
       "stride_s DOUBLE, reason VARCHAR NOT NULL, dataset VARCHAR, created_at TIMESTAMP);",
}

RUN_STATUSES = ("success", "failed")
# runs.error_kind of a failed run: the disk refused a write (retried on the next invocation), or anything else.
ERROR_KINDS = ("storage", "error")
MATRIX_STATUSES = ("running", "finished", "interrupted")
RUN_TABLES = ("runs", "epochs", "class_metrics", "confusion", "predictions")
PRETRAIN_TABLES = ("pretrain_runs", "pretrain_epochs")
TABLES = (*RUN_TABLES, "matrices", "embeddings", "embedding_skips", *PRETRAIN_TABLES)
EMBEDDING_KEY = ("model_fingerprint", "video", "start_frame", "end_frame")


class SchemaOutdated(UserError):
    """The file's schema is older than this code; any write (or `Warehouse.migrate`) upgrades it."""


def migrate(conn: Connection) -> int:
    """Bring the read-write `conn`'s file to SCHEMA_VERSION; return the version it had (0 = new)."""
    version = stored_version(conn)
    if version == 0:
        _create_schema(conn)
        return 0
    if version > SCHEMA_VERSION:
        raise _newer_error(version, _conn_path(conn))
    for step in range(version, SCHEMA_VERSION):
        if step not in MIGRATIONS:
            raise RuntimeError(f"no migration from warehouse schema version {step} to {step + 1}")
        with transaction(conn):
            conn.execute(MIGRATIONS[step])
            _set_version(conn, step + 1)
    return version


@cache
def schema_sql() -> str:
    return resources.files("vjepa_core.store").joinpath("schema.sql").read_text(encoding="utf-8")


@cache
def catalog() -> dict[str, dict[str, str]]:
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
    with transaction(conn):
        conn.execute(schema_sql())
        _set_version(conn, SCHEMA_VERSION)


def stored_version(conn: Connection) -> int:
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


def check_readable(conn: Connection, path: Path) -> None:
    version = stored_version(conn)
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
