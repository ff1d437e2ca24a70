"""Run detail: spec, curves, confusion, per-class scores, worst videos, time split, reproduce and release commands."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.queries import commands, detail
from vjepa_core.analysis.configurations import spec_dict
from vjepa_core.analysis.stats import ALPHA
from vjepa_core.release.command import release_command

st.title("Run detail")
runs = ui.filtered(ui.guard()).sort_values("started_at", ascending=False)
if runs.empty:
    st.info("No run matches the filters; clear some filters in the sidebar.", icon=":material/filter_alt:")
    st.stop()

labels = {row["run_id"]: ui.run_label(row) for _, row in runs.iterrows()}
wanted = st.query_params.get("run")
ids = list(labels)
run_id = st.selectbox("run", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=labels.get)
st.query_params["run"] = run_id
tables = ui.run_tables([run_id])
run = tables["runs"].iloc[0].to_dict()
spec = spec_dict(run["spec"])

if run["status"] != "success":
    st.error(f"This run failed: {run.get('error')}", icon=":material/error:")
cols = st.columns(5)
chance = runs.set_index("run_id").loc[run_id, ["chance_acc", "above_chance_p"]]
beats = pd.notna(run["test_acc"]) and pd.notna(chance["above_chance_p"])
cols[0].metric("test accuracy", ui.fmt_pct(run["test_acc"]),
               delta=f"{100 * (run['test_acc'] - chance['chance_acc']):+.1f} pts vs chance" if beats else None,
               delta_color="normal" if beats and chance["above_chance_p"] < ALPHA else "off",
               help=(f"chance {chance['chance_acc']:.1%} (always answering the largest test class); exact "
                     f"binomial p = {chance['above_chance_p']:.2g}") if beats else None)
cols[1].metric("test macro-F1", ui.fmt_pct(run.get("test_macro_f1")))
cols[2].metric("best val accuracy", ui.fmt_pct(run["best_val_acc"]),
               help=f"epoch {run['best_epoch']}" if pd.notna(run["best_epoch"]) else None)
cols[3].metric("trainable params", f"{int(run['trainable_params']):,}" if pd.notna(run["trainable_params"]) else "-")
cols[4].metric("wall time", f"{run['train_seconds']:.1f} s" if pd.notna(run["train_seconds"]) else "-")

st.markdown("**Reproduce** (same spec, same run id):")
st.code(commands.reproduce_command(spec), language="bash", wrap_lines=True)
if run["status"] == "success" and run.get("checkpoint_path"):
    st.markdown("**Release** (a folder plain transformers opens, with a model card made from these figures; "
                "`--adapter-only`, `--dtype fp16`, `--space` for other forms):")
    st.code(commands.command_for(release_command(run_id, f"release-{run_id[:8]}"), ui.warehouse_path()),
            language="bash", wrap_lines=True)
st.markdown(f"**Checkpoint:** `{run.get('checkpoint_path') or 'none'}`  ·  **run id:** `{run_id}`  ·  "
            f"**configuration:** `{run['config_id']}`  ·  "
            f"**matrix:** `{run.get('matrix_id') or '-'}`  ·  **device:** `{run.get('device') or '-'}`")
with st.expander("Spec and versions"):
    left, right = st.columns(2)
    left.json(spec)
    right.json(json.loads(run["versions"]) if isinstance(run.get("versions"), str) else {})

if not tables["epochs"].empty:
    st.subheader("Training curves")
    st.altair_chart(charts.curves_chart(detail.curves_long(tables["epochs"])))

split = st.radio("split", ["test", "val"], horizontal=True)
left, right = st.columns(2)
grid = detail.confusion_grid(tables["confusion"], split=split)
if not grid.empty:
    left.subheader("Confusion matrix")
    left.altair_chart(charts.confusion_chart(grid))
metrics = tables["class_metrics"][tables["class_metrics"]["split"] == split]
if not metrics.empty:
    right.subheader("Per class")
    right.altair_chart(charts.class_metrics_chart(metrics), width="stretch")

worst = detail.worst_videos(tables["predictions"], split=split)
if not worst.empty:
    st.subheader("Worst-classified videos")
    st.caption("Confident mistakes first, then the least confident right answers.")
    st.dataframe(worst, hide_index=True, width="stretch", column_config={
        "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0, max_value=1),
        "correct": st.column_config.CheckboxColumn("correct")})

timing = detail.time_split(run)
if not timing.empty:
    st.subheader("Where the time went")
    st.altair_chart(charts.time_split_chart(timing), width="stretch")
