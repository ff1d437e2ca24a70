"""Live: which process trains which run, matrix progress and the newest results, refreshing itself
while runners write."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import ui
from dashboard.queries import commands, live, readiness

st.title("Live")
path = ui.warehouse_path()
status = readiness.warehouse_status(path)
if status.kind not in ("ok", "empty", "only_failed", "busy"):
    ui.show_status(status)
    st.stop()
auto = st.toggle("auto-refresh every 5 s", value=True)


def _duration(seconds: float) -> str:
    if pd.isna(seconds):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def running(claims: pd.DataFrame) -> None:
    st.subheader("Running now")
    if claims.empty:
        st.caption("No run is being trained against this warehouse right now.")
        return
    shown = claims.assign(since=claims["running_seconds"].map(_duration),
                          heartbeat=claims["heartbeat_age_seconds"].map(lambda s: f"{_duration(s)} ago"),
                          matrix=claims["matrix_name"].fillna(claims["matrix_id"]))
    st.dataframe(shown[["run_id", "strategy", "matrix", "process", "command", "since", "heartbeat", "state"]],
                 hide_index=True, width="stretch")
    gone = claims[claims["state"] == "gone"]
    if not gone.empty:
        st.warning(f"{len(gone)} run(s) held by a process that is gone ({', '.join(gone['process'])}): the next "
                   "`runner run-matrix` (or `runner run`) of them takes them over.", icon=":material/warning:")


@st.fragment(run_every=5 if auto else None)
def progress() -> None:
    progress_rows, recent = ui.read(live.matrix_progress, path)
    st.caption(f"updated {datetime.now():%H:%M:%S}")
    running(ui.read(live.running_now, path))
    if progress_rows.empty:
        st.info("No matrix has run against this warehouse yet. Start one and watch it here:",
                icon=":material/hourglass_empty:")
        st.code(commands.command_for("runner run-matrix", path), language="bash")
    for row in progress_rows.itertuples():
        total = int(row.total_runs) if pd.notna(row.total_runs) else 0
        st.markdown(f"**{row.name or row.matrix_id}** · `{row.matrix_id}` · {row.status}")
        st.progress(float(row.fraction), text=f"{row.done} of {total} runs ({row.succeeded} ok, {row.failed} failed)"
                    f" · elapsed {_duration(row.elapsed_seconds)} · ETA {_duration(row.eta_seconds)}"
                    + (f" · now running `{row.current_run_id}`" if row.status == "running" and row.current_run_id
                       else ""))
        if row.status == "stopped":
            st.warning(f"Its process (PID {int(row.pid)}) is gone without finishing: killed, out of memory or a "
                       "reboot. Run the same `runner run-matrix` command again: it resumes where this one stopped.",
                       icon=":material/warning:")
    if not recent.empty:
        st.subheader("Newest runs")
        st.dataframe(recent, hide_index=True, width="stretch", column_config={
            "test_acc": st.column_config.ProgressColumn("test acc", format="percent", min_value=0, max_value=1),
            "best_val_acc": st.column_config.NumberColumn("val acc", format="percent"),
            "train_seconds": st.column_config.NumberColumn("seconds", format="%.1f")})


progress()
