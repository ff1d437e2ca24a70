"""Rows in and out of the warehouse: Python dicts -> Arrow tables typed like the columns, and back.

Rows are validated and typed before any file is opened (a key that is not a column is a ValueError; JSON
columns take dicts or text, timestamps are stored as naive UTC), then inserted with one INSERT ... SELECT;
query results come back as dicts or DataFrames, JSON kept as text until `decode_json`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from vjepa_core.store.locking import Connection
from vjepa_core.store.schema import catalog

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


def owned(row: dict[str, Any], run_id: str, table: str, *, key: str = "run_id") -> dict[str, Any]:
    if row.get(key, run_id) != run_id:
        raise ValueError(f"{table} row of run {row[key]!r} in the record of run {run_id!r}")
    return {**row, key: run_id}


def arrow_rows(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """`rows` as an Arrow table typed like the warehouse columns they name; ValueError if they can't be."""
    columns = catalog()[table]
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


def insert(conn: Connection, table: str, rows: pa.Table, *, on_conflict: str = "") -> None:
    if rows.num_rows == 0:
        return
    names = ", ".join(f'"{name}"' for name in rows.column_names)
    conn.register("_incoming", rows)
    conn.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _incoming {on_conflict}')
    # Not in a `finally`: after a failed INSERT the transaction refuses even this, which would
    # hide the real error; the connection, and the view with it, is about to be closed anyway.
    conn.unregister("_incoming")


def records(result: Connection) -> list[dict[str, Any]]:
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def decode_json(table: str, record: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(record)
    for name, dtype in catalog()[table].items():
        if dtype == "JSON" and isinstance(decoded.get(name), str):
            decoded[name] = json.loads(decoded[name])
    return decoded


def vector_column(vectors: np.ndarray) -> pa.ListArray:
    """float32 [rows, D] -> an Arrow list<float> column (DuckDB's FLOAT[]), without a Python list per row."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    return pa.ListArray.from_arrays(pa.array(np.arange(len(vectors) + 1, dtype=np.int32) * dim), flat)
