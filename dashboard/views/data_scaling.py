"""Data scaling: test and validation accuracy, and training time, vs training videos per class."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import standings

st.title("How much data do I need?")
runs = ui.runs_varying("train_vpc", "videos-per-class", "runner run-matrix experiments/data_scaling.yaml")

chance = standings.chance_levels(runs)
table = standings.scaling(runs, "train_vpc")
st.caption("One line per strategy (per strategy and model when the runs use several models); dots are means over "
           "seeds, bars ± one std. Pick a matrix in the sidebar so that only the data size changes between points.")
x_title = "training videos per class (log scale)"
left, right = st.columns(2)
for column, metric in ((left, "test_acc"), (right, "best_val_acc")):
    column.altair_chart(charts.scaling_chart(table, "train_vpc", metric, x_title=x_title, log_x=True, chance=chance),
                        width="stretch")
st.subheader("Training time")
st.altair_chart(charts.scaling_chart(table, "train_vpc", "train_seconds", x_title=x_title, log_x=True),
                width="stretch")
with st.expander("Numbers"):
    st.dataframe(table.drop(columns=["low", "high"]), hide_index=True, width="stretch")
