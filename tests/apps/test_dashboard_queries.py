"""dashboard.queries.* against warehouses the real runner filled (`trained_runs`, `dashboard_runs`)."""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import typer
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from dashboard import charts
from dashboard.queries import commands, comparison, detail, live, readiness, run_rows, standings, sweeps, verdicts
from runner.options import build_spec, with_spec_options
from tests.support import DASHBOARD_MATRIX, DASHBOARD_VARIETY, TrainedRuns, plant_claim, right, write_scored_run
from vjepa_core.analysis.configurations import config_labels, spec_dict
from vjepa_core.analysis.stats import run_chance_test
from vjepa_core.analysis.verdict_text import p_text
from vjepa_core.spec import RunSpec
from vjepa_core.store import schema
from vjepa_core.store import warehouse as wh
from vjepa_core.store.claims import Claims, utc_now
from vjepa_core.store.warehouse import RunRecord, Warehouse


def _copy(source: Path, target: Path) -> Path:
    shutil.copy(source, target)
    return target


def test_status_explains_every_unusable_warehouse(tmp_path: Path, trained_runs: TrainedRuns,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    missing = readiness.warehouse_status(tmp_path / "none.duckdb")
    assert missing.kind == "missing" and missing.command == f"runner run-matrix --warehouse {tmp_path}/none.duckdb"
    duckdb.connect(str(tmp_path / "blank.duckdb")).close()
    assert readiness.warehouse_status(tmp_path / "blank.duckdb").kind == "no_schema"
    (tmp_path / "junk.duckdb").write_text("not a database")
    assert readiness.warehouse_status(tmp_path / "junk.duckdb").kind == "unreadable"

    Warehouse(tmp_path / "empty.duckdb").migrate()
    empty = readiness.warehouse_status(tmp_path / "empty.duckdb")
    assert empty.kind == "empty" and "runner run-matrix" in empty.command

    failed = RunSpec(strategy="head", data="synthetic", epochs=1)
    Warehouse(tmp_path / "failed.duckdb").write_run(RunRecord(run={
        "run_id": failed.run_id, "status": "failed", "error": "RuntimeError: loss is NaN", "spec": failed.to_dict()}))
    only_failed = readiness.warehouse_status(tmp_path / "failed.duckdb")
    assert (only_failed.kind, only_failed.runs) == ("only_failed", 1)
    assert only_failed.errors == ("RuntimeError: loss is NaN",)

    newer = _copy(trained_runs.warehouse, tmp_path / "newer.duckdb")
    with duckdb.connect(str(newer)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(schema.SCHEMA_VERSION + 1)])
    assert readiness.warehouse_status(newer).kind == "newer"

    ok = readiness.warehouse_status(trained_runs.warehouse)
    assert (ok.kind, ok.runs, ok.succeeded) == ("ok", 7, 6)
    # This code one schema version ahead of the file: the file is "old", and the dashboard must not upgrade it.
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    old = readiness.warehouse_status(trained_runs.warehouse)
    assert old.kind == "old" and "migrate()" in old.command
    assert wh.schema_version(trained_runs.warehouse) == schema.SCHEMA_VERSION - 1


def test_best_of_each_strategy_is_chosen_on_validation(dashboard_runs: TrainedRuns) -> None:
    board = standings.leaderboard(run_rows.load_runs(dashboard_runs.warehouse))
    for _, group in board.groupby("strategy"):
        (marked,) = group.index[group["best_in_strategy"]]
        assert group.loc[marked, "best_val_acc_mean"] == group["best_val_acc_mean"].max()
        ties = group[group["best_val_acc_mean"] == group["best_val_acc_mean"].max()]
        assert group.loc[marked, "trainable_params"] == ties["trainable_params"].min()


def test_the_verdict_as_a_table_a_chart_and_a_curve(tmp_path: Path) -> None:
    """lora wins on validation, head and pooler_head tie with it, pooler_head_lora is worse: the table names them
    and the pick (head: fewest trainable parameters), the points carry every call, the curve marks 54 videos."""
    path = tmp_path / "w.duckdb"
    store = Warehouse(path)
    cpu = {"device": "cpu", "release_bytes": 4_000_000, "inference_ms": 20.0}
    run_ids = [write_scored_run(store, "lora", val=0.9, correct=right(range(40)), columns=cpu),
               write_scored_run(store, "head", val=0.8, correct=right(range(38)), columns=cpu),
               write_scored_run(store, "pooler_head", val=0.7, correct=right(range(1, 40)), columns=cpu),
               write_scored_run(store, "pooler_head_lora", val=0.6, correct=right(range(10)), columns=cpu)]
    store.upsert_matrix({"matrix_id": "m", "name": "study", "status": "finished", "spec": {"run_ids": run_ids}})
    found = verdicts.matrix_verdict(path, verdicts.load_matrices(path).iloc[0].to_dict())
    (row,) = found.table.to_dict("records")
    assert (row["question"], row["winner"], row["beats"], row["ties"]) == (
        "Which strategy?", "lora", "pooler_head_lora", "head, pooler_head")
    assert row["test_acc"] == pytest.approx(40 / 54) and row["ci_low"] < row["test_acc"] < row["ci_high"]
    assert (row["deployment_pick"], row["pick_trainable_params"], row["pick_release_mb"], row["pick_cpu_ms"]) == (
        "head (not the winner)", 774, 4.0, 20.0)
    assert row["test_videos"] == 54 and 0 < row["detectable"] < 1
    points = found.points.set_index("config")
    assert points["call"].to_dict() == {"lora": "chosen", "head": "tied", "pooler_head": "tied",
                                        "pooler_head_lora": "worse"}
    assert points["deployment_pick"].to_dict() == {"lora": False, "head": True, "pooler_head": False,
                                                   "pooler_head_lora": False}
    curve = found.curve
    assert curve["test_videos"].is_monotonic_increasing and curve["detectable_points"].dropna().is_monotonic_decreasing
    (now,) = curve[curve["current"]].itertuples()
    assert now.test_videos == 54 and now.detectable_points == pytest.approx(100 * row["detectable"], abs=0.1)
    assert found.paragraphs[0][0] == "Which strategy?" and "Deployment pick: head" in found.paragraphs[0][1]


def test_matrix_options_newest_first_also_without_a_matrices_row() -> None:
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "matrix_id": ["m1", "m1", "m2", None],
                         "started_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"])})
    matrices = pd.DataFrame({"matrix_id": ["m1"], "name": ["default"], "spec": ["{}"],
                             "started_at": pd.to_datetime(["2026-01-01"])})
    options = verdicts.matrix_options(runs, matrices)
    assert options[["matrix_id", "label"]].values.tolist() == [["m2", "m2 (m2), 1 run(s)"],
                                                              ["m1", "default (m1), 2 run(s)"]]


def test_leaderboard_groups_seeds_into_configurations(trained_runs: TrainedRuns) -> None:
    runs = run_rows.load_runs(trained_runs.warehouse)
    assert len(runs) == 7 and runs["config_id"].nunique() == 4
    board = standings.leaderboard(runs)
    assert len(board) == 3 and (board["n"] == 2).all() and board["best_in_strategy"].all()
    raw = Warehouse(trained_runs.warehouse).runs(status="success")
    for row in board.itertuples():
        accs = raw[raw["strategy"] == row.strategy]["test_acc"]
        assert row.test_acc_mean == pytest.approx(accs.mean())
        assert row.test_acc_std == pytest.approx(accs.std(ddof=1))
        assert 0.0 <= row.test_acc_ci_low <= row.test_acc_mean <= row.test_acc_ci_high <= 1.0
        assert row.acc_per_mparam == pytest.approx(row.test_acc_mean / (row.trainable_params / 1e6))
    assert list(board["test_acc_mean"]) == sorted(board["test_acc_mean"], reverse=True)
    assert set(board["test_acc_interval"]) == {"t over 2 seeds"}
    # One seed of a configuration: a Wilson interval over its test videos, not the point itself.
    single = standings.leaderboard(runs[runs["seed"] == 0])
    for row in single.itertuples():
        run = raw[(raw["strategy"] == row.strategy) & (raw["seed"] == 0)].iloc[0]
        low, high = scipy_stats.binomtest(round(run["test_acc"] * run["num_test"]), run["num_test"]).proportion_ci(
            method="wilson")
        assert (row.test_acc_ci_low, row.test_acc_ci_high) == pytest.approx((low, high))
        assert row.test_acc_ci_low < row.test_acc_mean < row.test_acc_ci_high or row.test_acc_mean in (0, 1)
        assert row.test_acc_interval == f"Wilson over {run['num_test']} videos"
    # Labels name what differs between successful configurations: the strategy only.
    assert set(board["config"]) == {"head", "pooler_head", "lora"}


def test_labels_name_only_the_differences_a_strategy_reads() -> None:
    specs = [RunSpec(strategy="head").to_dict(), RunSpec(strategy="lora", lora_rank=8).to_dict(),
             RunSpec(strategy="full", encoder_lr_scale=0.1).to_dict(), RunSpec(strategy="full").to_dict()]
    labels = config_labels(specs, [s["strategy"] for s in specs])
    assert labels == ["head", "lora · rank=8", "full · encoder_lr_scale=0.1", "full · encoder_lr_scale=1"]


def test_runs_carry_their_chance_level(trained_runs: TrainedRuns) -> None:
    runs = run_rows.load_runs(trained_runs.warehouse)
    store = Warehouse(trained_runs.warehouse)
    for run in runs.to_dict("records"):
        expected = run_chance_test(run, store.table("class_metrics", run["run_id"]))
        if expected is None:  # the failed run: no test scores, so no test
            assert run["status"] == "failed" and math.isnan(run["above_chance_p"])
            continue
        assert run["chance_acc"] == pytest.approx(expected.chance)
        assert run["above_chance_p"] == pytest.approx(expected.p_value)
    board = standings.leaderboard(runs)
    for row in board.itertuples():
        seeds = runs[runs["run_id"].isin(row.run_ids.split(","))]
        assert row.above_chance == (seeds["above_chance_p"] < 0.05).sum() <= row.n
        assert row.chance_acc == pytest.approx(seeds["chance_acc"].max())
    succeeded = runs["chance_acc"][runs["status"] == "success"]
    assert standings.chance_levels(runs) == sorted({round(v, 6) for v in succeeded})


def test_filters_and_pareto(trained_runs: TrainedRuns) -> None:
    runs = run_rows.load_runs(trained_runs.warehouse)
    assert set(run_rows.filter_runs(runs, strategies=["lora"], statuses=["success"])["strategy"]) == {"lora"}
    today = pd.to_datetime(runs["started_at"]).max().date()
    assert len(run_rows.filter_runs(runs, dates=(today, today))) == 7
    assert run_rows.filter_runs(runs, dates=(date(2000, 1, 1), date(2000, 1, 2))).empty
    board = pd.DataFrame({"trainable_params": [10, 100, 1000, 50, 2000],
                          "test_acc_mean": [0.5, 0.7, 0.6, 0.5, 0.9]})
    assert standings.pareto(board)["on_frontier"].tolist() == [True, True, False, False, True]
    real = standings.pareto(standings.leaderboard(runs))
    smallest = real.loc[real["trainable_params"].idxmin()]
    assert smallest["on_frontier"] and real["on_frontier"].sum() >= 1


def test_scaling_sweeps_and_options(dashboard_runs: TrainedRuns) -> None:
    runs = run_rows.filter_runs(run_rows.load_runs(dashboard_runs.warehouse), matrices=[DASHBOARD_MATRIX])
    assert len(runs) == len(DASHBOARD_VARIETY)
    assert standings.has_variation(runs, "train_vpc") and standings.has_variation(runs, "frames_per_clip")
    scaling = standings.scaling(runs, "train_vpc")
    head_one = scaling.query("strategy == 'head' and train_vpc == 1 and metric == 'test_acc'").iloc[0]
    accs = runs.query("strategy == 'head' and videos_per_class == 1")["test_acc"]
    assert head_one["n"] == 2 and head_one["mean"] == pytest.approx(accs.mean())
    assert head_one["low"] == pytest.approx(max(accs.mean() - accs.std(ddof=1), 0.0))
    assert scaling["low"].ge(0).all() and scaling.query("metric != 'train_seconds'")["high"].le(1).all()

    two_models = pd.concat([runs, runs.query("strategy == 'head'").assign(model="preset:tiny-jepa", test_acc=1.0)])
    lines = standings.scaling(two_models, "train_vpc").query("metric == 'test_acc'")
    assert {"head on tiny", "head on tiny-jepa"} <= set(lines["strategy"])
    assert lines.query("strategy == 'head on tiny-jepa'")["mean"].eq(1.0).all()
    # Each line keeps its strategy's colour, a second model of a strategy a lighter one: never one colour for all.
    def colors(scale: dict[str, Any]) -> dict[str, str]:
        return dict(zip(scale["domain"], scale["range"], strict=True))

    chart = charts.scaling_chart(lines, "train_vpc", "test_acc", x_title="x").to_dict()
    colors_of_lines = colors(chart["layer"][0]["encoding"]["color"]["scale"])
    alone = colors(charts.strategy_color(["head", "lora"]).to_dict()["scale"])
    assert len(set(colors_of_lines.values())) == len(colors_of_lines) == lines["strategy"].nunique()
    assert colors_of_lines["lora on tiny"] == alone["lora"] and colors_of_lines["head on tiny"] == alone["head"]
    assert colors_of_lines["head on tiny-jepa"] != alone["head"]

    options = sweeps.varying_options(runs)
    assert options == ["strategy", "videos_per_class", "frames_per_clip", "lr", "lora_rank"]
    grid = sweeps.sweep_grid(runs[runs["strategy"] == "lora"])
    assert len(grid) == 4 and (grid["n"] == 1).all()
    cell = grid.query("lr == 0.01 and lora_rank == 8").iloc[0]
    assert cell["mean"] == runs.query("strategy == 'lora' and lr == 0.01 and lora_rank == 8")["best_val_acc"].item()

    long = sweeps.parallel_coordinates(runs, options)
    assert len(long) == len(runs) * (len(options) + 1)
    assert long["position"].between(0, 1).all()
    lr_positions = long[long["axis"] == "lr"].groupby("value")["position"].first().to_dict()
    assert lr_positions == {"0.001": 0.0, "0.01": 1.0}

    top = sweeps.top_configs(standings.leaderboard(runs), 3)
    assert len(top) == 3 and top["best_val_acc_mean"].is_monotonic_decreasing
    assert top["gap"].tolist() == pytest.approx((top["best_val_acc_mean"] - top["test_acc_mean"]).tolist())


def test_run_detail_frames(trained_runs: TrainedRuns) -> None:
    run_id = trained_runs.run_ids[0]
    tables = run_rows.load_run_tables(trained_runs.warehouse, [run_id])
    run = tables["runs"].iloc[0].to_dict()
    everything = run_rows.load_runs(trained_runs.warehouse).set_index("run_id")
    chance = run_chance_test(run, tables["class_metrics"])
    assert run["chance_acc"] == pytest.approx(everything.loc[run_id, "chance_acc"]) == pytest.approx(chance.chance)
    assert run["above_chance_p"] == pytest.approx(chance.p_value)
    grid = detail.confusion_grid(tables["confusion"])
    assert len(grid) == run["num_classes"] ** 2 and grid["count"].sum() == run["num_test"]
    assert grid.groupby("true_class")["rate"].sum().tolist() == pytest.approx([1.0] * run["num_classes"])

    worst = detail.worst_videos(tables["predictions"], k=100)
    assert len(worst) == run["num_test"]
    wrong = worst[~worst["correct"]]
    assert worst["correct"].tolist() == sorted(worst["correct"].tolist())  # mistakes first
    assert wrong["confidence"].is_monotonic_decreasing
    assert worst[worst["correct"]]["confidence"].is_monotonic_increasing

    split = detail.time_split(run)
    assert split["seconds"].sum() == pytest.approx(run["train_seconds"], rel=0.01)
    assert {"decode", "encode", "fit", "eval"} <= set(split["phase"])
    curves = detail.curves_long(tables["epochs"])
    assert len(curves) == 2 * 4 and set(curves["panel"]) == {"loss", "accuracy"}


def _rebuilt_run_id(command: str) -> str:
    """Parse a `runner run ...` command with the runner's own flag machinery and hash the spec it builds."""
    seen: dict[str, Any] = {}
    app = typer.Typer()

    @app.command()
    @with_spec_options
    def run(overrides: dict[str, Any] | None = None) -> None:
        seen["spec"] = build_spec(None, overrides or {})

    args = shlex.split(command)
    assert args[:2] == ["runner", "run"]
    result = CliRunner().invoke(app, args[2:])
    assert result.exit_code == 0, result.output
    return seen["spec"].run_id


def test_reproduce_command_rebuilds_the_run_id(dashboard_runs: TrainedRuns) -> None:
    runs = run_rows.load_runs(dashboard_runs.warehouse)
    for row in runs.itertuples():  # success and failed, every strategy, lr / rank / frames / data size
        command = commands.reproduce_command(spec_dict(row.spec))
        assert _rebuilt_run_id(command) == row.run_id, command
    assert commands.reproduce_command(RunSpec().to_dict()) == "runner run"
    probe = RunSpec(strategy="pooler_head", feature_layers=(-7, -5, -3, -1), pooler_layers=3)
    command = commands.reproduce_command(json.loads(json.dumps(probe.to_dict())))  # as the warehouse gives it back
    assert "--feature-layers=-7,-5,-3,-1 --pooler-layers 3" in command and _rebuilt_run_id(command) == probe.run_id


def test_compare_frames(trained_runs: TrainedRuns) -> None:
    first, second = trained_runs.run_ids[:2]
    tables = run_rows.load_run_tables(trained_runs.warehouse, [first, second])
    num_test = int(tables["runs"]["num_test"].iloc[0])
    tests = comparison.significance(tables["predictions"], [first, second], {})
    row = tests.iloc[0]
    assert row["n_shared"] == num_test and row["diff"] == pytest.approx(row["acc_b"] - row["acc_a"])
    assert row["ci_low"] <= row["diff"] <= row["ci_high"] and row["verdict"].endswith(
        f"p = {p_text(row['p'])} (exact McNemar): {'a real difference' if row['p'] < 0.05 else 'within noise'}")
    accs = tables["runs"].set_index("run_id")["test_acc"]
    assert (row["acc_a"], row["acc_b"]) == pytest.approx((accs[first], accs[second]))
    deltas = comparison.class_deltas(tables["class_metrics"], [first, second], {first: "a", second: "b"})
    assert (deltas[deltas["run"] == "a"]["delta"] == 0).all() and set(deltas["run"]) == {"a", "b"}
    delta = comparison.confusion_delta(tables["confusion"], first, second)
    assert delta["count_delta"].sum() == 0 and delta["delta"].between(-1, 1).all()


def test_matrix_progress(dashboard_runs: TrainedRuns) -> None:
    progress, recent = live.matrix_progress(dashboard_runs.warehouse, recent=5)
    row = progress.set_index("matrix_id").loc[DASHBOARD_MATRIX]
    total = len(DASHBOARD_VARIETY) + 2
    assert (row["done"], row["total_runs"], row["status"]) == (len(DASHBOARD_VARIETY), total, "running")
    assert row["fraction"] == pytest.approx(len(DASHBOARD_VARIETY) / total)
    assert row["eta_seconds"] == pytest.approx(row["elapsed_seconds"] / row["done"] * 2)
    assert row["current_run_id"] == dashboard_runs.run_ids[-1]
    assert len(recent) == 5 and recent["finished_at"].is_monotonic_decreasing


def test_running_now_names_each_process_and_whether_it_lives(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    store.upsert_matrix({"matrix_id": "m1", "name": "strategies", "status": "running"})
    plant_claim(store, "killed-here", strategy="lora", matrix_id="m1",
                claimed_at=utc_now() - timedelta(seconds=95))
    plant_claim(store, "far-away", host="gpu-box-7", pid=4242, strategy="full", command="run",
                heartbeat_at=utc_now() - timedelta(seconds=20))
    with Claims(store, command="sweep") as mine:
        mine.claim("ours", strategy="head", matrix_id="m1")
        claims = live.running_now(store.path).set_index("run_id")
    assert list(claims.index) == ["killed-here", "far-away", "ours"]  # oldest claim first
    assert claims["state"].to_dict() == {"killed-here": "gone", "far-away": "running", "ours": "running"}
    assert claims.loc["ours", "process"] == f"PID {os.getpid()} on {socket.gethostname()}"
    assert claims.loc["far-away", "process"] == "PID 4242 on gpu-box-7"
    assert claims.loc["ours", "command"] == "sweep" and claims.loc["ours", "matrix_name"] == "strategies"
    assert pd.isna(claims.loc["far-away", "matrix_name"])
    assert claims.loc["killed-here", "running_seconds"] == pytest.approx(95, abs=10)
    assert claims.loc["far-away", "heartbeat_age_seconds"] == pytest.approx(20, abs=10)
    # A heartbeat older than the timeout: that machine's process counts as gone.
    stale = live.shape_claims(claims.reset_index(), now=utc_now() + timedelta(hours=1)).set_index("run_id")
    assert stale.loc["far-away", "state"] == "gone" and stale.loc["ours", "state"] == "running"
    assert list(live.running_now(store.path)["run_id"]) == ["killed-here", "far-away"]  # ours: released


def test_a_running_matrix_whose_process_died_here_is_stopped(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store, here = Warehouse(tmp_path / "w.duckdb"), socket.gethostname()
    rows = {"killed": (dead.pid, here, "running"), "alive": (os.getpid(), here, "running"),
            "elsewhere": (dead.pid, "another-machine", "running"), "done": (dead.pid, here, "finished")}
    for matrix_id, (pid, host, status) in rows.items():
        store.upsert_matrix({"matrix_id": matrix_id, "status": status, "total_runs": 2, "pid": pid, "host": host,
                             "started_at": pd.Timestamp.now()})
    progress = live.matrix_progress(store.path)[0].set_index("matrix_id")
    assert progress["status"].to_dict() == {"killed": "stopped", "alive": "running", "elsewhere": "running",
                                            "done": "finished"}


WRITER = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from pathlib import Path
    from vjepa_core.store.warehouse import RunRecord, Warehouse
    store, reads = Warehouse(sys.argv[1]), Path(sys.argv[2])
    store.upsert_matrix({"matrix_id": "live", "status": "running", "total_runs": 15, "started_at": datetime.now()})
    print("started", flush=True)
    for i in range(15):
        # Interleave with the reader (it logs every read) however loaded the machine is.
        deadline = time.monotonic() + 30
        while len(reads.read_text().splitlines()) <= i and time.monotonic() < deadline:
            time.sleep(0.005)
        store.write_run(RunRecord(run={"run_id": f"live-{i}", "matrix_id": "live", "status": "failed",
                                       "error": "x", "finished_at": datetime.now()}))
        store.upsert_matrix({"matrix_id": "live", "current_run_id": f"live-{i}"})
    store.upsert_matrix({"matrix_id": "live", "status": "finished"})
""")


def test_reads_while_a_matrix_writes(tmp_path: Path, trained_runs: TrainedRuns) -> None:
    warehouse = _copy(trained_runs.warehouse, tmp_path / "live.duckdb")
    Warehouse(warehouse).migrate()
    reads = tmp_path / "reads.log"
    reads.write_text("")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse), str(reads)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        seen = []
        deadline = time.monotonic() + 60
        while writer.poll() is None and time.monotonic() < deadline:
            progress, _ = live.matrix_progress(warehouse)  # never a lock error: reads retry
            seen.append(int(progress.set_index("matrix_id").loc["live", "done"]))
            assert readiness.warehouse_status(warehouse).kind == "ok"
            with reads.open("a") as log:
                log.write(f"{seen[-1]}\n")
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    final, _ = live.matrix_progress(warehouse)
    assert final.set_index("matrix_id").loc["live", ["done", "status"]].tolist() == [15, "finished"]
    assert seen == sorted(seen) and len(seen) >= 2 and seen[-1] > seen[0]


def test_one_runs_tables_carry_the_same_chance_as_the_run_list(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    supports = {"up": 6, "down": 2, "still": 2}  # unbalanced: chance is 60%, not 1/3
    store.write_run(RunRecord(
        run={"run_id": "r1", "status": "success", "strategy": "head", "num_classes": 3, "num_test": 10,
             "test_acc": 0.9, "spec": RunSpec(strategy="head").to_dict()},
        class_metrics=[{"split": "test", "class_name": c, "support": n} for c, n in supports.items()]))
    one = run_rows.load_run_tables(store.path, ["r1"])["runs"].iloc[0]
    listed = run_rows.load_runs(store.path).iloc[0]
    assert one["chance_acc"] == listed["chance_acc"] == pytest.approx(0.6)
    assert one["above_chance_p"] == pytest.approx(listed["above_chance_p"])


def test_chance_falls_back_to_the_class_count() -> None:
    runs = pd.DataFrame({"num_classes": [4, 4, 3], "num_test": [40, None, 30], "test_acc": [0.5, None, 0.4],
                         "test_largest_class": [None, None, 15], "test_support": [None, None, 30]})
    out = run_rows.with_chance(runs)
    assert out["chance_acc"].tolist() == pytest.approx([0.25, 0.25, 0.5])
    assert out["above_chance_p"][0] == pytest.approx(scipy_stats.binomtest(20, 40, 0.25, alternative="greater").pvalue)
    assert math.isnan(out["above_chance_p"][1])
    assert out["above_chance_p"][2] == pytest.approx(scipy_stats.binomtest(12, 30, 0.5, alternative="greater").pvalue)
    assert "test_largest_class" not in out and "test_support" not in out
