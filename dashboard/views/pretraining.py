"""Pretraining: `runner pretrain` runs and their collapse diagnostics per epoch (loss, embedding std,
effective rank, probe accuracy), with the epoch each run kept."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import commands, pretraining, readiness

st.title("Pretraining")
path = ui.warehouse_path()
status = readiness.warehouse_status(path)
if status.kind not in ("ok", "empty", "only_failed", "busy"):  # pretraining runs need no fine-tuning runs
    ui.show_status(status)
    st.stop()
runs, epochs = ui.read(pretraining.load_pretraining, path)
if runs.empty:
    st.info("No pretraining run in this warehouse yet. Pretrain an encoder on unlabelled videos "
            "(add --probe-data with a labelled set to see a probe accuracy per epoch):", icon=":material/school:")
    st.code(commands.command_for("runner pretrain --data VIDEOS --model tiny --probe-data LABELLED", path),
            language="bash")
    st.stop()

chosen = st.multiselect("runs", runs["label"].tolist(), default=runs["label"].tolist()[:3])
shown = runs[runs["label"].isin(chosen)]
st.dataframe(pretraining.pretrain_summary(shown), hide_index=True, width="stretch")
long = pretraining.pretrain_curves(shown, epochs)
if long.empty:
    st.caption("No epoch recorded for these runs.")
    st.stop()
st.caption("Epoch 0 is the starting model. A collapsing encoder maps every clip to the same embedding: its loss "
           "falls towards 0 while the embedding std and the effective rank fall too, and the probe does not improve. "
           "The ring marks the epoch whose weights the run kept (best probe accuracy, else the last).")
st.altair_chart(charts.pretrain_chart(long), width="stretch")
