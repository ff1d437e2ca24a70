"""Frames per clip: accuracy and training time vs the frames the model sees, per strategy."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import standings

st.title("How many frames per clip?")
runs = ui.runs_varying("frames_per_clip", "frames-per-clip", "runner run-matrix experiments/frames.yaml")

chance = standings.chance_levels(runs)
table = standings.scaling(runs, "frames_per_clip")
st.caption("One line per strategy (per strategy and model when the runs use several models); dots are means over "
           "seeds, bars ± one std.")
left, right = st.columns(2)
left.altair_chart(charts.scaling_chart(table, "frames_per_clip", "test_acc", x_title="frames per clip",
                                       chance=chance), width="stretch")
right.altair_chart(charts.scaling_chart(table, "frames_per_clip", "train_seconds", x_title="frames per clip"),
                   width="stretch")
with st.expander("Numbers"):
    st.dataframe(table.drop(columns=["low", "high"]), hide_index=True, width="stretch")
