"""Embeddings: a 2-D map (PCA) of `runner embed`'s vectors, coloured by class, and a video's nearest neighbours."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, embeddings, ui
from dashboard.queries import commands, readiness

st.title("Embeddings")
path = ui.warehouse_path()
status = readiness.warehouse_status(path)
if status.kind not in ("ok", "empty", "only_failed"):  # a missing, old or unreadable file: say what to do
    ui.show_status(status)
    st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def _sets(path: str, stamp: tuple[int, ...]) -> pd.DataFrame:
    return embeddings.embedding_sets(path)


@st.cache_data(show_spinner=False, max_entries=8)
def _vectors(path: str, stamp: tuple[int, ...], chosen: str) -> tuple[pd.DataFrame, object]:
    return embeddings.load_embeddings(path, chosen)


sets = ui.read(_sets, str(path), ui.fingerprint(path))
if sets.empty:
    ui.not_enough("no embeddings in the warehouse yet", commands.command_for("runner embed synthetic --model tiny",
                                                                            path))
    st.stop()

labels = dict(zip(sets["set_id"], sets["label"], strict=True))
chosen = st.selectbox("Vectors", list(labels), format_func=labels.get, key="emb_set")
rows, vectors = ui.read(_vectors, str(path), ui.fingerprint(path), chosen)
coords, explained = embeddings.project(vectors)
names = list(rows["name"])
picked = st.selectbox("Video", range(len(names)), format_func=lambda i: f"{names[i]} ({rows['label'].iloc[i]})",
                      key="emb_video")
k = st.slider("Neighbours", 1, max(1, min(20, len(names) - 1)), min(5, max(1, len(names) - 1)), key="emb_k")
near = embeddings.neighbours(vectors, picked, k)
frame = embeddings.embedding_map(rows, coords, picked, list(near["row"]))
st.caption(f"{len(rows)} vectors, PCA: the two axes explain {explained[0]:.0%} and {explained[1]:.0%} of the "
           "variance. Ringed: the picked video (large) and its nearest neighbours by cosine similarity.")
st.altair_chart(charts.embedding_map_chart(frame, x_title=f"PC 1 ({explained[0]:.0%})",
                                           y_title=f"PC 2 ({explained[1]:.0%})"), width="stretch")
table = near.assign(video=[names[i] for i in near["row"]], label=list(rows["label"].iloc[near["row"]]))
if rows["labelled"].any():  # a set read without labels has no classes to compare
    table["same_class"] = list(rows["label"].iloc[near["row"]] == rows["label"].iloc[picked])
st.subheader(f"Nearest to {names[picked]}")
st.dataframe(table.drop(columns=["row"]), hide_index=True, width="stretch",
             column_config={"similarity": st.column_config.NumberColumn(format="%.3f")})
