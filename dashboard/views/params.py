"""Accuracy vs trainable parameters: log-x scatter with the Pareto frontier, and accuracy per million."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import standings

st.title("Accuracy vs trainable parameters")
runs = ui.filtered(ui.guard())
board = standings.pareto(standings.leaderboard(runs))
if len(board) < 2:
    ui.not_enough("it needs two or more configurations", "runner run-matrix")
    st.stop()

st.caption("Each dot is a configuration (mean over seeds, bar = ± std). The dashed step line is the Pareto "
           "frontier: no other configuration is both smaller and more accurate. Scroll to zoom; click a legend "
           "entry to pick out a strategy.")
st.altair_chart(charts.params_chart(board), width="stretch")

frontier = board[board["on_frontier"]].sort_values("trainable_params")
st.markdown("**On the frontier:** " + ", ".join(
    f"{row.config} ({row.trainable_params:,} params, {row.test_acc_mean:.0%})" for row in frontier.itertuples()))

st.subheader("Accuracy per million trainable parameters")
st.altair_chart(charts.efficiency_chart(board), width="stretch")
