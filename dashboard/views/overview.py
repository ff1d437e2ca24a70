"""Overview: the verdict of a matrix as a table and a chart (each question's winner chosen on validation, tested
on the test set, its ties and deployment pick; the sentences behind an expander), then the leaderboard of
configurations (mean and 95% interval), the best of each strategy on validation marked."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, ui
from dashboard.queries import standings, verdicts

st.title("Which strategy wins?")
all_runs = ui.guard()
runs = ui.filtered(all_runs)
board = standings.leaderboard(runs)

st.subheader("Verdict")
matrices = ui.matrices()
options = verdicts.matrix_options(runs, matrices)
if options.empty:
    st.info("None of these runs belongs to a matrix. A verdict compares the configurations of one study:",
            icon=":material/gavel:")
    st.code("runner run-matrix", language="bash")
else:
    labels = dict(zip(options["matrix_id"], options["label"], strict=True))
    chosen = st.selectbox("matrix", list(labels), format_func=labels.get, key="verdict_matrix",
                          help="The newest matrix among the shown runs comes first.") if len(labels) > 1 \
        else next(iter(labels))
    specs = dict(zip(matrices["matrix_id"], matrices["spec"], strict=True))
    found = ui.verdict(chosen, specs.get(chosen))
    if found.table.empty:
        st.info(f"{labels[chosen]}: nothing to compare (a verdict needs two configurations of one setting).",
                icon=":material/gavel:")
    else:
        st.dataframe(
            found.table, hide_index=True, width="stretch",
            column_order=["question", "winner", "test_acc", "ci_low", "ci_high", "beats", "ties", "detectable",
                          "deployment_pick", "pick_trainable_params", "pick_release_mb", "pick_cpu_ms"],
            column_config={
                "winner": st.column_config.TextColumn("winner", help="best mean validation accuracy"),
                "test_acc": st.column_config.NumberColumn("test acc", format="percent"),
                "ci_low": st.column_config.NumberColumn("95% CI low", format="percent"),
                "ci_high": st.column_config.NumberColumn("95% CI high", format="percent"),
                "beats": st.column_config.TextColumn("beats", help="worse than the winner (Holm p < 0.05)"),
                "ties": st.column_config.TextColumn("ties with", help="not distinguishable on this test set"),
                "detectable": st.column_config.NumberColumn(
                    "detectable", format="percent", help="smallest difference the test set detects (80% power); "
                    "empty: none"),
                "deployment_pick": st.column_config.TextColumn(
                    "deployment pick", help="the cheapest of the winner and the configurations tied with it"),
                "pick_trainable_params": st.column_config.NumberColumn("pick: trainable", format="localized"),
                "pick_release_mb": st.column_config.NumberColumn("pick: release MB", format="%.1f",
                                                                 help="fp32 weights, LoRA merged"),
                "pick_cpu_ms": st.column_config.NumberColumn("pick: CPU ms/clip", format="%.1f",
                                                             help="measured at batch 1 on a CPU; empty: not "
                                                             "measured on a CPU"),
            })
        st.altair_chart(charts.verdict_chart(found.points), width="stretch")
        if not found.curve.empty:
            st.caption("How big a difference could each test set see? The smallest accuracy difference the "
                       "verdict's paired test detects with 80% power, against the number of test videos, at each "
                       "question's observed disagreement and comparisons; a diamond marks this study. `runner plan` "
                       "says how many test videos and seeds a difference needs.")
            st.altair_chart(charts.detectable_chart(found.curve), width="stretch")
    if found.paragraphs:
        with st.expander("The verdict in sentences"):
            for question, answer in found.paragraphs:
                st.markdown(f"**{question}** {answer}" if question else answer)
    st.caption(verdicts.HOW)

on_val = board.iloc[standings.chosen_on_validation(board)[0]] if not board.empty else None
cols = st.columns(5)
cols[0].metric("runs", len(runs))
cols[1].metric("succeeded", int((runs["status"] == "success").sum()))
cols[2].metric("failed", int((runs["status"] == "failed").sum()))
cols[3].metric("configurations", len(board))
cols[4].metric("val-chosen test acc", ui.fmt_pct(None if on_val is None else on_val["test_acc_mean"]),
               help=None if on_val is None else f"{on_val['config']}: the best mean validation accuracy of the shown "
               "configurations; its test accuracy, never the best test accuracy (choosing on the test set and "
               "reporting that same score flatters it)")

if board.empty:
    st.info("No successful run matches the filters; clear some filters in the sidebar.", icon=":material/filter_alt:")
    st.stop()

st.subheader("Leaderboard")
st.caption("Test accuracy per configuration (a run spec minus its seed): dot = mean over seeds, bar = its 95% "
           "interval (t over seeds; with one seed, Wilson over the test videos, the test set's own noise); "
           "a diamond marks the best configuration of each strategy on validation (mean over seeds, never on test); "
           "the dashed line is chance (always answering the largest test class). Hover for details.")
st.altair_chart(charts.leaderboard_chart(board), width="stretch")

table = board.assign(best=board["best_in_strategy"].map({True: "★", False: ""}),
                     vs_chance=[f"{above}/{n}" for above, n in zip(board["above_chance"], board["n"], strict=True)])
st.dataframe(
    table, hide_index=True, width="stretch",
    column_order=["best", "config", "strategy", "n", "test_acc_mean", "test_acc_std", "test_acc_ci_low",
                  "test_acc_ci_high", "test_acc_interval", "vs_chance", "best_val_acc_mean", "trainable_params",
                  "train_seconds_mean", "inference_ms_mean", "failed", "config_id"],
    column_config={
        "best": st.column_config.TextColumn("best", width="small", help="best configuration of its strategy on "
                                            "validation accuracy (mean over seeds)"),
        "test_acc_mean": st.column_config.ProgressColumn("test acc", format="percent", min_value=0, max_value=1),
        "test_acc_std": st.column_config.NumberColumn("± std", format="%.3f"),
        "test_acc_ci_low": st.column_config.NumberColumn("95% CI low", format="%.3f"),
        "test_acc_ci_high": st.column_config.NumberColumn("95% CI high", format="%.3f"),
        "test_acc_interval": st.column_config.TextColumn("CI of", help="t over seeds with two or more seeds; with one "
                                                         "seed, Wilson over the test videos it was scored on"),
        "vs_chance": st.column_config.TextColumn("above chance", help="seeds whose test accuracy beats chance "
                                                 "(exact binomial test, p < 0.05)"),
        "best_val_acc_mean": st.column_config.ProgressColumn("val acc", format="percent", min_value=0, max_value=1),
        "trainable_params": st.column_config.NumberColumn("trainable params", format="localized"),
        "train_seconds_mean": st.column_config.NumberColumn("train s", format="%.1f"),
        "inference_ms_mean": st.column_config.NumberColumn("inference ms", format="%.0f"),
        "n": st.column_config.NumberColumn("n seeds"),
        "config_id": st.column_config.TextColumn("config id", help="runner compare ID_A ID_B takes it (or a "
                                                 "prefix): every seed of the configuration, paired by seed"),
    },
)
st.download_button("Download leaderboard (CSV)", board.to_csv(index=False).encode(), file_name="leaderboard.csv",
                   mime="text/csv", icon=":material/download:")

with st.expander(f"All {len(runs)} runs"):
    st.dataframe(runs[["run_id", "matrix_id", "config", "seed", "status", "test_acc", "best_val_acc",
                       "train_seconds", "started_at", "error"]], hide_index=True, width="stretch")
