"""Compare two to four runs: curves overlaid, paired significance, per-class deltas, confusion difference."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import comparison, detail

st.title("Compare runs")
runs = ui.filtered(ui.guard())
runs = runs[runs["status"] == "success"].sort_values("test_acc", ascending=False)
if len(runs) < 2:
    ui.not_enough("comparing needs two or more successful runs", "runner run-matrix")
    st.stop()

labels = {row["run_id"]: ui.run_label(row) for _, row in runs.iterrows()}
chosen = st.multiselect("runs (the first is the baseline)", list(labels), default=list(labels)[:2],
                        max_selections=4, format_func=labels.get)
if len(chosen) < 2:
    st.info("Pick two to four runs.", icon=":material/compare_arrows:")
    st.stop()

tables = ui.run_tables(chosen)
short = {run_id: f"{labels[run_id].split(' · ')[0]} · {run_id[:8]}" for run_id in chosen}

st.subheader("Is the difference real?")
tests = comparison.significance(tables["predictions"], chosen, short)
if tests.empty:
    st.info("These runs share no scored test videos, so there is no paired test.")
else:
    for row in tests.itertuples():
        show = st.success if row.significant else st.info
        show(row.verdict, icon=":material/check_circle:" if row.significant else ":material/balance:")
    st.caption("Paired on the test videos both runs scored, with the test `runner verdict` and `runner compare` use: "
               "McNemar's exact test on the videos only one of them got right, and a 95% interval of the accuracy "
               "difference that resamples videos.")

st.subheader("Training curves")
st.altair_chart(charts.curves_chart(detail.curves_long(tables["epochs"], short), by_run=True))

st.subheader("Per-class F1 change vs the baseline")
deltas = comparison.class_deltas(tables["class_metrics"], chosen, short)
st.altair_chart(charts.class_delta_chart(deltas[deltas["run_id"] != chosen[0]]), width="stretch")

st.subheader("Confusion difference")
other = st.selectbox("against the baseline", chosen[1:], format_func=short.get)
delta = comparison.confusion_delta(tables["confusion"], chosen[0], other)
st.caption("Blue: the second run puts more of the true class here; red: fewer. Numbers are count changes.")
st.markdown(f"**{short[other]}** minus **{short[chosen[0]]}**")
st.altair_chart(charts.confusion_delta_chart(delta))
