"""Sweeps: lr x LoRA-rank heat map, parallel coordinates over the swept options, val-test gap, top k."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import standings, sweeps

SWEEP_COMMAND = "runner sweep experiments/lora_sweep.yaml"

st.title("Hyper-parameter sweeps")
runs = ui.filtered(ui.guard())
options = sweeps.varying_options(runs)
board = standings.leaderboard(runs)

st.subheader("Learning rate x LoRA rank")
grid = sweeps.sweep_grid(runs) if "lr" in options else None
if grid is None or grid["lr"].nunique() < 2 or grid["lora_rank"].nunique() < 2:
    ui.not_enough("LoRA runs at two or more learning rates and ranks", SWEEP_COMMAND)
else:
    st.caption("Mean best validation accuracy per cell over seeds (n = seeds).")
    st.altair_chart(charts.heatmap_chart(grid, title="val accuracy"))

st.subheader("Swept options")
if not options:
    ui.not_enough("all runs share one configuration", SWEEP_COMMAND)
else:
    st.caption(f"One line per run across the options that vary ({', '.join(options)}), coloured by best validation "
               "accuracy. Hover a line to follow its configuration.")
    long = sweeps.parallel_coordinates(runs, options)
    st.altair_chart(charts.parallel_chart(long, [*options, "best_val_acc"]), width="stretch")

if not board.empty:
    st.subheader("Validation vs test")
    st.caption("Below the dashed diagonal, validation accuracy flattered the configuration: picking the best of "
               "many on validation overstates how it does on new videos.")
    st.altair_chart(charts.gap_chart(board), width="stretch")
    st.subheader("Top configurations by validation accuracy")
    k = st.slider("k", 1, min(25, len(board)), min(10, len(board))) if len(board) > 1 else 1
    top = sweeps.top_configs(board, k)
    st.dataframe(top[["config", "n", "best_val_acc_mean", "test_acc_mean", "gap", "trainable_params"]],
                 hide_index=True, width="stretch",
                 column_config={"best_val_acc_mean": st.column_config.NumberColumn("val acc", format="percent"),
                                "test_acc_mean": st.column_config.NumberColumn("test acc", format="percent"),
                                "gap": st.column_config.NumberColumn("val - test", format="percent")})
