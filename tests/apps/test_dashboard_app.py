"""Every dashboard page under `streamlit.testing.v1.AppTest`, over warehouses the real runner wrote.

Each page must render without an exception and show its charts (checked down to the rows each
chart was given), and every unusable warehouse must get a friendly message with a command.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.queries import commands, run_rows, standings
from tests.support import DASHBOARD_MATRIX, DASHBOARD_VARIETY, TrainedRuns, plant_claim
from vjepa_core import paths
from vjepa_core.analysis.configurations import spec_dict
from vjepa_core.release.command import release_command
from vjepa_core.spec import RunSpec
from vjepa_core.store import schema
from vjepa_core.store.warehouse import RunRecord, Warehouse

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _app(monkeypatch: pytest.MonkeyPatch, warehouse: Path, page: str | None = None, *,
         query: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv(paths.WAREHOUSE_ENV, str(warehouse))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if page:
        at.switch_page(f"views/{page}.py")
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if page or query:
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list[dict]:
    """Each chart's Vega-Lite spec with its datasets decoded as DataFrames under `_frames`."""
    charts = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        spec["_frames"] = [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in element.proto.datasets]
        charts.append(spec)
    return charts


def _marks(spec: dict) -> set[str]:
    found = set()
    for key in ("layer", "hconcat", "vconcat"):
        for child in spec.get(key, []):
            found |= _marks(child)
    if "spec" in spec:
        found |= _marks(spec["spec"])
    mark = spec.get("mark")
    if mark:
        found.add(mark["type"] if isinstance(mark, dict) else mark)
    return found


def _chance_levels(spec: dict) -> list[float]:
    return sorted(v for frame in spec["_frames"] if list(frame.columns) == ["chance"] for v in frame["chance"])


def test_overview_leaderboard(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse)
    metrics = {m.label: m.value for m in at.metric}
    runs = run_rows.load_runs(dashboard_runs.warehouse)
    board = standings.leaderboard(runs)
    assert metrics["runs"] == str(len(runs)) and metrics["failed"] == "1"
    assert metrics["configurations"] == str(len(board))
    verdict_chart, curve, chart = _charts(at)  # the verdict's two lead the page
    assert {"rule", "point"} <= _marks(verdict_chart) and {"line", "point"} <= _marks(curve)
    assert {"rule", "point", "text"} <= _marks(chart)
    assert sorted(chart["_frames"][0]["config"]) == sorted(board["config"])
    # The bars are 95% intervals, never a zero-width "certainty": one-seed configurations get Wilson's.
    drawn = chart["_frames"][0].set_index("config")
    for row in board.itertuples():
        assert (drawn.loc[row.config, "low"], drawn.loc[row.config, "high"]) == pytest.approx(
            (row.test_acc_ci_low, row.test_acc_ci_high))
        if row.n == 1:
            assert drawn.loc[row.config, "high"] > drawn.loc[row.config, "low"]
    assert set(drawn["test_acc_interval"]) >= {"t over 2 seeds"} and any(
        kind.startswith("Wilson over") for kind in drawn["test_acc_interval"])
    assert _chance_levels(chart) == standings.chance_levels(runs) == [pytest.approx(1 / 6, abs=1e-6)]
    assert at.get("download_button") and len(at.dataframe) == 3  # the verdict, the leaderboard, every run
    shown = at.dataframe[1].value
    assert list(shown["test_acc_mean"]) == pytest.approx(list(board["test_acc_mean"]))
    assert (shown["best"] == "★").sum() == board["strategy"].nunique()
    assert list(shown["vs_chance"]) == [f"{a}/{n}" for a, n in zip(board["above_chance"], board["n"], strict=True)]

    at.sidebar.multiselect(key="f_strategy").set_value(["lora"]).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["runs"] == str((runs["strategy"] == "lora").sum())


def test_overview_leads_with_the_verdict(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse)
    assert at.subheader[0].value == "Verdict"
    # The newest matrix first: at 2/class and 8 frames, head and four lora points compete. The winner, worked
    # out here from the raw rows: the best mean validation accuracy, ties to fewer trainable parameters.
    raw = Warehouse(dashboard_runs.warehouse).runs(matrix_id=DASHBOARD_MATRIX, status="success")
    cell = raw[(raw["videos_per_class"] == 2) & (raw["frames_per_clip"] == 8)]
    ranked = cell.groupby(["strategy", "lr", "lora_rank"], as_index=False).agg(
        val=("best_val_acc", "mean"), params=("trainable_params", "median"), test=("test_acc", "mean"),
        seconds=("train_seconds", "mean")).sort_values(["val", "params", "seconds"], ascending=[False, True, True])
    best = ranked.iloc[0]
    name = "head" if best["strategy"] == "head" else f"lora lr={best['lr']:g} rank={best['lora_rank']}"
    # First a table: one row per question, the winner with its test accuracy, interval, rivals and pick.
    table = at.dataframe[0].value
    questions = ["Which configuration at 2/class with 8 frames?", "Which data size for head with 8 frames?",
                 "Which frames setting for head at 2/class?"]
    assert table["question"].tolist()[:3] == questions
    first = table.iloc[0]
    assert first["winner"] == name and first["test_acc"] == pytest.approx(best["test"])
    assert first["ci_low"] <= first["test_acc"] <= first["ci_high"]
    named = {first["winner"], *first["ties"].split(", "), *first["beats"].split(", ")} - {"-"}
    assert len(named) == 5 and first["deployment_pick"].split(" (")[0] in named
    # Then the picture: every configuration of every question, coloured by its call, one chosen and one pick each.
    verdict_chart, curve = _charts(at)[:2]
    points = verdict_chart["_frames"][0]
    assert points.groupby("question")["call"].apply(lambda calls: (calls == "chosen").sum()).eq(1).all()
    assert points.groupby("question")["deployment_pick"].sum().eq(1).all()
    assert set(points["question"]) == set(table["question"]) and len(points[points["question"] == questions[0]]) == 5
    # The planner's curve: each question's detectable difference against test-set size, its own size marked.
    drawn = curve["_frames"][0]
    marked = drawn[drawn["current"]].set_index("question")
    for row in table.itertuples():
        if pd.notna(row.detectable):
            assert marked.loc[row.question, "test_videos"] == row.test_videos
            assert marked.loc[row.question, "detectable_points"] == pytest.approx(100 * row.detectable, abs=0.1)
    # The sentences sit behind an expander, the same the runner prints.
    assert [e.label for e in at.expander][:1] == ["The verdict in sentences"]
    texts = [m.value for m in at.markdown]
    assert texts[0].startswith(f"**{questions[0]}** {name}, chosen on validation among 5 configurations (val "
                               f"{100 * best['val']:.1f}%")
    assert [text.split("**")[1] for text in texts[:3]] == questions
    assert all("test videos are too few to detect any difference" in text or "were not detectable" in text
               for text in texts[:3])
    assert any("Chosen on validation (mean over seeds)" in c.value for c in at.caption)
    on_val = standings.leaderboard(run_rows.load_runs(dashboard_runs.warehouse))
    on_val = on_val.iloc[standings.chosen_on_validation(on_val)[0]]
    assert {m.label: m.value for m in at.metric}["val-chosen test acc"] == \
        f"{100 * on_val['test_acc_mean']:.1f}%"

    # The other matrix: three strategies over two seeds, and the failed `full` run said to be left out.
    at.selectbox(key="verdict_matrix").set_value("fixture-matrix").run()
    assert not at.exception
    assert at.dataframe[0].value["question"].tolist() == ["Which strategy?"]
    (text,) = [m.value for m in at.markdown if m.value.startswith("**Which strategy?**")]
    assert "chosen on validation among 3 configurations" in text and "(t over 2 seeds)" in text
    assert "Left out: full, seed 0 (failed: RuntimeError: loss is NaN)." in text


def test_efficiency_bars_start_above_zero_on_their_log_axis(monkeypatch: pytest.MonkeyPatch,
                                                           dashboard_runs: TrainedRuns) -> None:
    """A bar from 0 cannot be drawn on a log axis: Vega silently leaves the chart empty."""
    at = _app(monkeypatch, dashboard_runs.warehouse, "params")
    bars = next(spec for spec in _charts(at) if _marks(spec) == {"bar"})
    frame = bars["_frames"][0]
    board = standings.leaderboard(run_rows.load_runs(dashboard_runs.warehouse))
    assert len(frame) == (board["acc_per_mparam"] > 0).sum() > 0
    assert bars["encoding"]["x"]["field"] == "base" and bars["encoding"]["x2"]["field"] == "acc_per_mparam"
    assert bars["encoding"]["x"]["scale"]["type"] == "log"
    assert (frame["base"] > 0).all() and (frame["base"] < frame["acc_per_mparam"]).all()


def test_data_scaling_numbers(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    monkeypatch.setenv(paths.WAREHOUSE_ENV, str(dashboard_runs.warehouse))
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.sidebar.multiselect(key="f_matrix").set_value([DASHBOARD_MATRIX])
    at.switch_page("views/data_scaling.py").run()
    assert not at.exception
    test_acc = _charts(at)[0]["_frames"][0]
    runs = run_rows.load_runs(dashboard_runs.warehouse)
    head_one = runs.query("matrix_id == @DASHBOARD_MATRIX and strategy == 'head' and videos_per_class == 1")
    point = test_acc.query("strategy == 'head' and train_vpc == 1").iloc[0]
    assert point["n"] == 2 and point["mean"] == pytest.approx(head_one["test_acc"].mean())


def test_sweep_heatmap_cells(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse, "sweeps")
    heatmap = next(spec for spec in _charts(at) if "rect" in _marks(spec))
    cells = heatmap["_frames"][0]
    lora = [v for v in DASHBOARD_VARIETY if v["strategy"] == "lora"]
    assert len(cells) == len(lora) + 1  # the variety's lr x rank grid plus the fixture's lora (rank 16)
    assert set(cells["lora_rank"]) == {4, 8, 16}


def test_run_detail(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    run_id = dashboard_runs.run_ids[0]
    at = _app(monkeypatch, dashboard_runs.warehouse, "run_detail", query={"run": run_id})
    run = Warehouse(dashboard_runs.warehouse).get_run(run_id)
    assert at.selectbox[0].value == run_id
    shown = [c.value for c in at.code]
    assert commands.reproduce_command(run["spec"]) in shown
    release = release_command(run_id, f"release-{run_id[:8]}", warehouse=str(dashboard_runs.warehouse))
    assert release in shown
    assert any(run["checkpoint_path"] in m.value for m in at.markdown)
    drawn = _charts(at)
    assert len(drawn) == 4  # curves, confusion, per-class bars, time split
    chance = run_rows.load_runs(dashboard_runs.warehouse).set_index("run_id").loc[run_id, "chance_acc"]
    accuracy = next(m for m in at.metric if m.label == "test accuracy")
    assert accuracy.delta == f"{100 * (run['test_acc'] - chance):+.1f} pts vs chance"
    confusion = next(spec for spec in drawn if "rect" in _marks(spec))["_frames"][0]
    assert confusion["count"].sum() == run["num_test"]
    assert at.dataframe[0].value["name"].str.endswith((".mp4", ".avi")).all()

    at.radio[0].set_value("val").run()
    assert not at.exception
    val = next(spec for spec in _charts(at) if "rect" in _marks(spec))["_frames"][0]
    assert val["count"].sum() == run["num_val"]


def test_run_detail_of_a_failed_run(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    runs = run_rows.load_runs(dashboard_runs.warehouse)
    failed = runs[runs["status"] == "failed"].iloc[0]
    at = _app(monkeypatch, dashboard_runs.warehouse, "run_detail", query={"run": failed["run_id"]})
    assert any("loss is NaN" in e.value for e in at.error)
    assert [c.value for c in at.code] == [commands.reproduce_command(spec_dict(failed["spec"]))]  # no release


def test_compare(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse, "compare")
    runs = next(box for box in at.main.multiselect if box.label.startswith("runs"))
    assert len(runs.value) == 2
    assert len(_charts(at)) == 3
    verdicts = [e.value for e in (*at.info, *at.success)]
    assert any("(exact McNemar)" in v for v in verdicts)
    three = [dashboard_runs.run_ids[i] for i in (0, 2, 4)]
    runs.set_value(three).run()
    assert not at.exception
    assert sum("(exact McNemar)" in e.value for e in (*at.info, *at.success)) == 2
    curves = _charts(at)[0]["_frames"][0]
    assert curves["run_id"].nunique() == 3


def test_live_progress(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse, "live")
    bars = at.get("progress")
    done, total = len(DASHBOARD_VARIETY), len(DASHBOARD_VARIETY) + 2
    assert len(bars) == 1 and bars[0].proto.value == round(100 * done / total)
    assert f"{done} of {total} runs" in bars[0].proto.text
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 10


def test_not_enough_data(monkeypatch: pytest.MonkeyPatch, trained_runs: TrainedRuns) -> None:
    for page, command in (("data_scaling", "runner run-matrix experiments/data_scaling.yaml"),
                          ("frames", "runner run-matrix experiments/frames.yaml"),
                          ("sweeps", "runner sweep experiments/lora_sweep.yaml")):
        at = _app(monkeypatch, trained_runs.warehouse, page)
        assert any("Not enough data" in i.value for i in at.info), page
        assert command in [c.value for c in at.code], page


def _failed_only(path: Path) -> Path:
    spec = RunSpec(strategy="head", data="synthetic", epochs=1)
    Warehouse(path).write_run(RunRecord(run={"run_id": spec.run_id, "status": "failed", "spec": spec.to_dict(),
                                             "error": "UserError: data: no videos"}))
    return path


def _empty(path: Path) -> Path:
    Warehouse(path).migrate()
    return path


def _blank(path: Path) -> Path:
    duckdb.connect(str(path)).close()
    return path


@pytest.mark.parametrize(("make", "kind", "command"), [
    (lambda p: p, "No warehouse at", "runner run-matrix --warehouse"),
    (_blank, "holds no vjepa-lab results", "runner run-matrix --warehouse"),
    (_empty, "has no runs yet", "runner run-matrix --warehouse"),
    (_failed_only, "failed", "runner list --status failed --warehouse"),
])
@pytest.mark.parametrize("page", ["overview", "run_detail", "live"])
def test_unusable_warehouses_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make: object,
                                       kind: str, command: str, page: str) -> None:
    warehouse = make(tmp_path / "vjepa.duckdb")  # type: ignore[operator]
    if page == "live" and kind in ("has no runs yet", "failed"):
        pytest.skip("live shows progress of an empty or all-failed warehouse instead")
    at = _app(monkeypatch, warehouse, None if page == "overview" else page)
    messages = [m.value for m in (*at.info, *at.warning)]
    assert any(kind in m for m in messages), messages
    assert any(c.value.startswith(command) for c in at.code)
    assert not at.get("vega_lite_chart")


def test_old_schema_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained_runs: TrainedRuns) -> None:
    warehouse = tmp_path / "old.duckdb"
    shutil.copy(trained_runs.warehouse, warehouse)
    before = warehouse.read_bytes()
    # This code one schema version ahead of the file: exactly what an old warehouse looks like to it.
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    at = _app(monkeypatch, warehouse)
    assert any("schema version" in w.value for w in at.warning)
    assert any("migrate()" in c.value for c in at.code)
    assert warehouse.read_bytes() == before  # the dashboard only reads: it never upgrades a file


def test_live_shows_which_process_runs_what(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vjepa_core.store.claims import Claims

    store = Warehouse(tmp_path / "vjepa.duckdb")
    store.upsert_matrix({"matrix_id": "m1", "name": "strategies", "status": "running", "total_runs": 6,
                         "started_at": pd.Timestamp.now()})
    plant_claim(store, "run-killed", strategy="lora", matrix_id="m1")
    with Claims(store, command="run-matrix") as mine:
        mine.claim("run-live", strategy="head", matrix_id="m1")
        at = _app(monkeypatch, store.path, "live")
    assert "Running now" in [h.value for h in at.subheader]
    table = at.dataframe[0].value.set_index("run_id")
    assert table["state"].to_dict() == {"run-killed": "gone", "run-live": "running"}
    assert table.loc["run-live", "process"] == f"PID {os.getpid()} on {socket.gethostname()}"
    assert (table["matrix"] == "strategies").all() and table.loc["run-live", "strategy"] == "head"
    assert any("held by a process that is gone" in w.value and "takes them over" in w.value for w in at.warning)


def test_live_shows_a_matrix_with_no_runs_yet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "vjepa.duckdb")
    store.upsert_matrix({"matrix_id": "m1", "name": "default study", "status": "running", "total_runs": 12,
                         "started_at": pd.Timestamp.now()})
    at = _app(monkeypatch, store.path, "live")
    (bar,) = at.get("progress")
    assert bar.proto.value == 0 and "0 of 12 runs" in bar.proto.text


def test_live_says_a_killed_matrix_stopped_and_how_to_resume(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process now, as after kill -9
    store = Warehouse(tmp_path / "vjepa.duckdb")
    store.upsert_matrix({"matrix_id": "m1", "name": "killed", "status": "running", "total_runs": 4,
                         "started_at": pd.Timestamp.now(), "pid": dead.pid, "host": socket.gethostname()})
    at = _app(monkeypatch, store.path, "live")
    assert any("killed" in m.value and "· stopped" in m.value for m in at.markdown)
    (warning,) = at.warning
    assert f"PID {dead.pid}" in warning.value and "resumes where this one stopped" in warning.value
    assert "ETA -" in at.get("progress")[0].proto.text


def test_dashboard_command_rejects_bad_flags(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from runner.cli import app
    from runner.commands.dashboard import APP as SERVED
    from runner.commands.dashboard import streamlit_command

    for args, message in ((["--port", "0"], "--port must be between 1 and 65535"),
                          (["--host", " "], "--host must not be empty"),
                          (["--warehouse", str(tmp_path)], "is a folder")):
        result = CliRunner().invoke(app, ["dashboard", "--no-browser", *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    command = streamlit_command(tmp_path / "w.duckdb", host="127.0.0.1", port=8600)
    assert command[1:5] == ["-m", "streamlit", "run", str(SERVED)] and SERVED.is_file()
    assert command[-3:] == ["--", "--warehouse", str(tmp_path / "w.duckdb")]
    assert command[command.index("--browser.gatherUsageStats"):][:2] == ["--browser.gatherUsageStats", "false"]


def test_embeddings_map_and_neighbours(monkeypatch: pytest.MonkeyPatch, dashboard_runs: TrainedRuns) -> None:
    at = _app(monkeypatch, dashboard_runs.warehouse, "embeddings")
    (chart,) = _charts(at)
    points = chart["_frames"][0]
    assert len(points) == 24 and set(points["label"]) == {"up", "down", "left", "right", "wave", "still"}
    assert (points["role"] == "picked").sum() == 1 and (points["role"] == "neighbour").sum() == 5
    assert {"circle", "point"} <= _marks(chart)
    table = at.dataframe[0].value
    assert len(table) == 5 and table["similarity"].is_monotonic_decreasing
    at.selectbox(key="emb_video").set_value(7).run()
    picked = _charts(at)[0]["_frames"][0].query("role == 'picked'")
    assert len(picked) == 1 and picked.index[0] == 7


def test_embeddings_of_a_plain_folder_say_what_the_set_is(monkeypatch: pytest.MonkeyPatch, synthetic_small: Path,
                                                          tmp_path: Path) -> None:
    """The real `runner embed` over a folder without class folders: the picker says '6 videos, one vector
    each' (never '6 vectors per video'), the map has no classes and the neighbours no class column."""
    from typer.testing import CliRunner

    from runner.cli import app

    footage = tmp_path / "footage"
    footage.mkdir()
    for video in synthetic_small.glob("*/*_000.*"):
        shutil.copy(video, footage / video.name)
    warehouse = tmp_path / "w.duckdb"
    embedded = CliRunner().invoke(app, ["embed", str(footage), "--model", "tiny", "--frames-per-clip", "8",
                                        "--warehouse", str(warehouse), "--results", str(tmp_path / "results"), "-q"])
    assert embedded.exit_code == 0, embedded.output
    at = _app(monkeypatch, warehouse, "embeddings")
    (picker,) = [box for box in at.selectbox if box.key == "emb_set"]
    assert len(picker.options) == 1 and "footage · preset:tiny encoder (mean) · 6 videos, one vector each" in \
        picker.options[0]
    points = _charts(at)[0]["_frames"][0]
    assert len(points) == 6 and set(points["label"]) == {"(no label)"}
    assert list(at.dataframe[0].value.columns) == ["rank", "similarity", "video", "label"]


def test_embeddings_page_without_embeddings(monkeypatch: pytest.MonkeyPatch, trained_runs: TrainedRuns,
                                            tmp_path: Path) -> None:
    at = _app(monkeypatch, trained_runs.warehouse, "embeddings")
    assert any("no embeddings" in i.value for i in at.info)
    assert any(c.value.startswith("runner embed synthetic --model tiny") for c in at.code)
    at = _app(monkeypatch, tmp_path / "none.duckdb", "embeddings")
    assert any("No warehouse at" in m.value for m in at.info) and not at.get("vega_lite_chart")
