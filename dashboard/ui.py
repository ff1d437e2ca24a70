"""Streamlit glue shared by the pages: which warehouse (`--warehouse` after streamlit's `--`, else the variable,
else the default), reads cached per file fingerprint (a write changes it, so fresh results show on the next
rerun while an idle warehouse is read once), and `guard()`, which shows a friendly explanation and the command
to run instead of a traceback for a missing, empty, old, busy or all-failed warehouse.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from dashboard.queries import readiness, run_rows, standings, verdicts
from vjepa_core import paths
from vjepa_core.errors import UserError
from vjepa_core.store.locking import WarehouseBusy

T = TypeVar("T")
FILTERS = {"f_matrix": "matrix_id", "f_dataset": "dataset", "f_model": "model", "f_strategy": "strategy",
           "f_status": "status"}
STATUS_ICONS = {"missing": ":material/database:", "empty": ":material/hourglass_empty:",
                "only_failed": ":material/error:", "busy": ":material/sync:"}


def warehouse_path(argv: list[str] | None = None) -> Path:
    args = sys.argv[1:] if argv is None else argv
    if "--warehouse" in args:
        index = args.index("--warehouse")
        if index + 1 < len(args):
            return Path(args[index + 1])
    return paths.warehouse_path()


def fingerprint(path: Path) -> tuple[int, ...]:
    """Changes whenever a writer commits: DuckDB appends to `<file>.wal` or checkpoints into the file."""
    stamp: list[int] = []
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            info = file.stat()
            stamp += [info.st_mtime_ns, info.st_size]
        except OSError:
            stamp += [0, 0]
    return tuple(stamp)


@st.cache_data(show_spinner=False, max_entries=8)
def _runs(path: str, stamp: tuple[int, ...]) -> pd.DataFrame:
    return run_rows.load_runs(path)


@st.cache_data(show_spinner=False, max_entries=32)
def _run_tables(path: str, stamp: tuple[int, ...], run_ids: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return run_rows.load_run_tables(path, run_ids)


@st.cache_data(show_spinner=False, max_entries=8)
def _matrices(path: str, stamp: tuple[int, ...]) -> pd.DataFrame:
    return verdicts.load_matrices(path)


@st.cache_data(show_spinner="Testing the configurations against the validation winner...", max_entries=16)
def _verdict(path: str, stamp: tuple[int, ...], matrix: tuple[str, str | None]) -> verdicts.MatrixVerdict:
    return verdicts.matrix_verdict(path, {"matrix_id": matrix[0], "spec": matrix[1]})


def matrices() -> pd.DataFrame:
    path = warehouse_path()
    return read(_matrices, str(path), fingerprint(path))


def verdict(matrix_id: str, spec: str | None) -> verdicts.MatrixVerdict:
    """A matrix's verdict: table, chart frames and sentences (`dashboard.queries.verdicts.matrix_verdict`)."""
    path = warehouse_path()
    return read(_verdict, str(path), fingerprint(path), (matrix_id, spec))


def runs() -> pd.DataFrame:
    path = warehouse_path()
    return read(_runs, str(path), fingerprint(path))


def run_tables(run_ids: list[str]) -> dict[str, pd.DataFrame]:
    path = warehouse_path()
    return read(_run_tables, str(path), fingerprint(path), tuple(run_ids))


def read(work: Callable[..., T], *args: Any) -> T:
    """Run a read; a busy or unreadable warehouse becomes a message on the page, not a traceback."""
    try:
        return work(*args)
    except WarehouseBusy as error:
        st.warning(f"The warehouse is busy (a writer holds it); retrying on the next refresh. {error}",
                   icon=":material/sync:")
    except UserError as error:
        st.error(str(error))
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; this tells type checkers so


def show_status(status: readiness.Status) -> None:
    icon = STATUS_ICONS.get(status.kind, ":material/info:")
    show = st.warning if status.kind in ("busy", "old", "newer", "unreadable", "only_failed") else st.info
    show(f"**{status.title}** {status.detail}", icon=icon)
    if status.command:
        st.code(status.command, language="bash")
    for error in status.errors:
        st.caption(f"error: `{error}`")


def guard() -> pd.DataFrame:
    """All runs of a usable warehouse, or explain why there are none and stop the page."""
    status = readiness.warehouse_status(warehouse_path())
    if not status.ok:
        show_status(status)
        st.stop()
    return runs()


def filtered(all_runs: pd.DataFrame) -> pd.DataFrame:
    """`all_runs` narrowed by the sidebar filters (their values live in session state across pages)."""
    chosen = {column: st.session_state.get(key) or () for key, column in FILTERS.items()}
    dates = st.session_state.get("f_dates")
    span = (dates[0], dates[1]) if isinstance(dates, tuple | list) and len(dates) == 2 else None
    return run_rows.filter_runs(all_runs, matrices=chosen["matrix_id"], datasets=chosen["dataset"],
                               models=chosen["model"], strategies=chosen["strategy"],
                               statuses=chosen["status"], dates=span)


def sidebar_filters(all_runs: pd.DataFrame) -> None:
    st.sidebar.subheader("Filters")
    for key, column in FILTERS.items():
        options = sorted(str(v) for v in all_runs[column].dropna().unique())
        st.sidebar.multiselect(column.replace("_id", ""), options, key=key, placeholder="all")
    started = pd.to_datetime(all_runs["started_at"]).dropna()
    if not started.empty:
        first, last = started.min().date(), started.max().date()
        st.sidebar.date_input("started between", value=(first, last), min_value=first, max_value=max(last,
                              date.today()), key="f_dates")


def not_enough(what: str, command: str) -> None:
    st.info(f"Not enough data for this view: {what}. Run:", icon=":material/science:")
    st.code(command, language="bash")


def runs_varying(column: str, what: str, command: str) -> pd.DataFrame:
    """The filtered runs, or the page stops with `not_enough` where no strategy has two values of `column`."""
    runs = filtered(guard())
    if not standings.has_variation(runs, column):
        not_enough(f"no strategy has runs at two or more {what} values", command)
        st.stop()
    return runs


def run_label(row: pd.Series) -> str:
    acc = "failed" if row["status"] != "success" else f"{row['test_acc']:.0%}"
    return f"{row['config']} · seed {row['seed']} · {acc} · {row['run_id'][:8]}"


def fmt_pct(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.1f}%"
