"""`runner run-matrix` / `sweep` / `compare` end to end on `synthetic_small`: runs, skips, failures,
exit codes, bad input, a real `kill -9` mid-matrix, and reads of the warehouse while it is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dashboard.queries.live import matrix_progress
from runner.cli import app
from runner.orchestration.matrix import load_matrix
from vjepa_core.analysis.stats import run_chance_test
from vjepa_core.models import PRESET_COMMON, PRESETS
from vjepa_core.store.warehouse import Warehouse, read_connection

FAST = {"model": "tiny", "epochs": 1, "batch_size": 4, "train_views": 1}


def write_spec(path: Path, data: Path, **sections: object) -> Path:
    spec = {"name": path.stem, "base": {**FAST, "data": str(data)}, **sections}
    path.write_text(yaml.safe_dump(spec))
    return path


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def broken_model(tmp_path: Path) -> Path:
    """A model folder whose config is fine (preflight passes) but whose weights are missing: the run fails."""
    from transformers import VJEPA2Config

    folder = tmp_path / "no_weights"
    VJEPA2Config(**PRESET_COMMON, **PRESETS["tiny"]).save_pretrained(folder)
    return folder


def test_run_matrix_records_failures_skips_done_runs_and_retries_on_request(tmp_path: Path,
                                                                            synthetic_small: Path) -> None:
    spec = write_spec(tmp_path / "two.yaml", synthetic_small, axes={"strategies": ["head", "pooler_head"]},
                      include=[{"strategy": "head", "model": str(broken_model(tmp_path))}])
    where = ["--warehouse", tmp_path / "w.duckdb", "--results", tmp_path / "results", "-q"]
    first = invoke("run-matrix", spec, *where)
    assert first.exit_code == 1, first.output
    assert "3 run(s): 3 ran, 0 skipped (already done), 1 failed" in first.output
    assert f"runner dashboard --warehouse {tmp_path / 'w.duckdb'}" in first.output
    store = Warehouse(tmp_path / "w.duckdb")
    runs = store.runs().set_index("run_id")
    assert sorted(runs["status"]) == ["failed", "success", "success"]
    assert runs["matrix_id"].nunique() == 1
    matrix = store.matrix(runs["matrix_id"].iloc[0])
    assert (matrix["status"], matrix["total_runs"], matrix["name"]) == ("finished", 3, "two")
    assert sorted(matrix["spec"]["run_ids"]) == sorted(runs.index)
    assert "error" in runs[runs.status == "failed"].columns and runs[runs.status == "failed"]["error"].iloc[0]
    summary = first.output[first.output.index("test accuracy"):]
    for strategy in ("head", "pooler_head"):
        assert f"{100 * runs[(runs.strategy == strategy) & (runs.status == 'success')]['test_acc'].iloc[0]:.1f}%" \
            in summary
    chance = [run_chance_test({**row, "run_id": run_id}, store.table("class_metrics", run_id))
              for run_id, row in runs[runs.status == "success"].to_dict("index").items()]
    above = sum(test.p_value < 0.05 for test in chance)
    assert f"chance {100 * chance[0].chance:.1f}% (always the largest test class); {above} of 2 run(s) above it" \
        in summary
    # It ends with the verdict: chosen on validation (ties to fewer trainable parameters), the failed run named.
    verdict = first.output[first.output.index(f"verdict (runner verdict {matrix['matrix_id']} --json"):]
    ok = runs[runs.status == "success"].sort_values(["best_val_acc", "trainable_params"], ascending=[False, True])
    assert f"Which strategy? {ok['strategy'].iloc[0]}, chosen on validation among 2 configurations (val " \
        f"{100 * ok['best_val_acc'].iloc[0]:.1f}%" in verdict
    assert "Left out of every question: head on no_weights, seed 0 (failed: " in verdict

    started = time.perf_counter()
    again = invoke("run-matrix", spec, *where)
    assert again.exit_code == 1  # the failed run is still failed: the exit code says so
    assert "3 run(s): 0 ran, 3 skipped (already done), 1 failed (1 in an earlier invocation" in again.output
    assert time.perf_counter() - started < 15
    assert store.runs().set_index("run_id")["finished_at"].equals(runs["finished_at"])  # nothing rewritten

    retry = invoke("run-matrix", spec, *where, "--retry-failed")
    assert retry.exit_code == 1 and "3 run(s): 1 ran, 2 skipped (already done), 1 failed" in retry.output
    after = store.runs().set_index("run_id")
    assert after.loc[runs.status == "success", "finished_at"].equals(runs.loc[runs.status == "success", "finished_at"])


@pytest.mark.parametrize(("args", "message"), [
    (["run-matrix", "missing.yaml"], "error: config: missing.yaml does not exist"),
    (["run-matrix", "--gpus-per-run", "1"], "error: --ray-address and --gpus-per-run need --executor ray"),
    (["run-matrix", "--executor", "dask"], "error: --executor: expected local or ray, got 'dask'"),
    (["run-matrix", "--epochs", "0"], "error: base: epochs must be at least 1, got 0"),
    (["sweep", "{bad_key}"], "error: matrix spec: unknown key(s) axis"),
    (["sweep", "{no_phase2}", "--top-k", "2"], "has no phase2 block"),
    (["run-matrix", "{no_data}"], "nowhere: no such file or folder"),
    (["compare", "abc", "def"], "error: no warehouse at"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        args: list[str], message: str) -> None:
    files = {"bad_key": tmp_path / "bad.yaml", "no_phase2": tmp_path / "grid.yaml", "no_data": tmp_path / "nd.yaml"}
    files["bad_key"].write_text("axis: {lr: [0.1]}\n")
    write_spec(files["no_phase2"], tmp_path, axes={"lr": [0.1]})
    write_spec(files["no_data"], tmp_path / "nowhere", axes={"lr": [0.1]})
    args = [a.format(**files) for a in args]
    monkeypatch.chdir(tmp_path)  # relative names resolve here, and a default warehouse would land here
    results = ["--results", tmp_path / "results"] if args[0] != "compare" else []
    result = invoke(*args, "--warehouse", tmp_path / "w.duckdb", *results)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "w.duckdb").exists()


def test_dry_run_lists_the_plan(tmp_path: Path, synthetic_small: Path) -> None:
    spec = write_spec(tmp_path / "plan.yaml", synthetic_small, axes={"strategies": ["head", "lora"],
                                                                     "seeds": [0, 1, 2]})
    result = invoke("run-matrix", spec, "--dry-run", "--warehouse", tmp_path / "w.duckdb")
    assert result.exit_code == 0
    assert "6 run(s), 0 done" in result.output
    assert not (tmp_path / "w.duckdb").exists()


def test_compare_gives_a_verdict_from_the_shared_test_videos(trained_runs) -> None:  # noqa: ANN001 - fixture
    runs = Warehouse(trained_runs.warehouse).runs(status="success").set_index(["strategy", "seed"])
    head, lora = runs.loc[("head", 0), "run_id"], runs.loc[("lora", 0), "run_id"]
    result = invoke("compare", head[:10], lora, "--warehouse", trained_runs.warehouse)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"head ({head[:8]}): {100 * runs.loc[('head', 0), 'test_acc']:.1f}%")
    assert f"lora ({lora[:8]}): {100 * runs.loc[('lora', 0), 'test_acc']:.1f}%" in lines[0]
    points = 100 * (runs.loc[("lora", 0), "test_acc"] - runs.loc[("head", 0), "test_acc"])
    assert lines[2].startswith(f"lora ({lora[:8]}) vs head ({head[:8]}): {points:+.1f} points")
    assert "(exact McNemar)" in lines[2] and ("a real difference" in lines[2] or "within noise" in lines[2])
    missing = invoke("compare", head, "ffffffff", "--warehouse", trained_runs.warehouse)
    assert missing.exit_code == 2 and "error: run 'ffffffff' is not in" in missing.output
    itself = invoke("compare", head, head[:8], "--warehouse", trained_runs.warehouse)
    assert itself.exit_code == 2 and itself.output == (f"error: {head} and {head[:8]} are both head ({head[:8]}): "
                                                       "name two different runs or configurations\n")


def _snapshot(path: Path, epochs: int) -> set[str]:
    """Finished run ids, checking in the same read snapshot that each finished run is whole."""
    with read_connection(path) as conn:
        runs = conn.execute("SELECT run_id, status, num_val + num_test FROM runs").fetchall()
        counts = dict(conn.execute("SELECT run_id, count(*) FROM epochs GROUP BY run_id").fetchall())
        preds = dict(conn.execute("SELECT run_id, count(*) FROM predictions GROUP BY run_id").fetchall())
    for run_id, status, scored in runs:
        assert status == "success"
        assert (counts.get(run_id), preds.get(run_id)) == (epochs, scored), "a reader saw half a run"
    return {row[0] for row in runs}


@pytest.mark.slow
def test_kill_9_mid_matrix_then_rerun_finishes_exactly_the_missing_runs(tmp_path: Path,
                                                                         synthetic_small: Path) -> None:
    spec = write_spec(tmp_path / "kill.yaml", synthetic_small, axes={"seeds": [0, 1, 2, 3]},
                      base={**FAST, "data": str(synthetic_small), "strategy": "head"})
    warehouse = tmp_path / "w.duckdb"
    where = ["--warehouse", warehouse, "--results", tmp_path / "results", "-q"]
    expected = {s.run_id for s in load_matrix(spec).runs}
    command = [sys.executable, "-c", "from runner.cli import main; main()", "run-matrix", str(spec)]
    proc = subprocess.Popen([*command, *map(str, where)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: set[str] = set()
    deadline = time.monotonic() + 300
    while not seen and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        if warehouse.exists():  # the live reader: never a lock error, never half a run
            seen = _snapshot(warehouse, epochs=1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    done_at_kill = _snapshot(warehouse, epochs=1)
    assert 1 <= len(done_at_kill) < len(expected)
    assert set(matrix_progress(warehouse)[0]["status"]) == {"stopped"}  # not 'running' forever
    before = Warehouse(warehouse).runs().set_index("run_id")["finished_at"]

    result = invoke("run-matrix", spec, *where)
    assert result.exit_code == 0, result.output
    assert f"4 run(s): {4 - len(done_at_kill)} ran, {len(done_at_kill)} skipped" in result.output
    runs = Warehouse(warehouse).runs()
    assert sorted(runs["run_id"]) == sorted(expected)  # each once (and nothing else)
    assert set(runs["status"]) == {"success"}
    assert _snapshot(warehouse, epochs=1) == expected
    assert runs.set_index("run_id").loc[before.index, "finished_at"].equals(before)  # the killed-before ones kept
    matrix = Warehouse(warehouse).matrix(runs["matrix_id"].iloc[0])
    assert (matrix["status"], matrix["total_runs"], matrix["current_run_id"]) == ("finished", 4, None)
    assert set(matrix_progress(warehouse)[0]["status"]) == {"finished"}


def test_sweep_reruns_the_best_configuration_with_more_seeds(tmp_path: Path, synthetic_small: Path) -> None:
    spec = write_spec(tmp_path / "sweep.yaml", synthetic_small, axes={"lr": [1e-3, 3e-2]},
                      phase2={"top_k": 2, "by": "best_val_acc", "set": {"seeds": [0, 1]}})
    where = ["--warehouse", tmp_path / "w.duckdb", "--results", tmp_path / "results", "-q"]
    result = invoke("sweep", spec, "--top-k", "1", *where)
    assert result.exit_code == 0, result.output
    assert "3 run(s): 3 ran, 0 skipped (already done), 0 failed" in result.output  # seed 0 was phase 1's
    runs = Warehouse(tmp_path / "w.duckdb").runs()
    phase1 = runs[runs["seed"] == 0].sort_values("lr")
    best_lr = phase1["lr"].iloc[int(phase1["best_val_acc"].to_numpy().argmax())]  # ties: the first in plan
    assert runs[runs["seed"] == 1]["lr"].tolist() == [best_lr]
    matrix = Warehouse(tmp_path / "w.duckdb").matrix(runs["matrix_id"].iloc[0])
    assert (matrix["status"], matrix["total_runs"]) == ("finished", 3)
    again = invoke("sweep", spec, "--top-k", "1", *where)
    assert "3 run(s): 0 ran, 3 skipped (already done), 0 failed" in again.output
    # `runner verdict` takes the sweep by name: the lr with the best mean validation accuracy over its seeds.
    verdict = invoke("verdict", "sweep", "--json", "--warehouse", tmp_path / "w.duckdb")
    assert verdict.exit_code == 0, verdict.output
    (question,) = json.loads(verdict.output)["verdicts"]
    means = runs.groupby("lr")["best_val_acc"].mean()
    chosen = runs.set_index("run_id").loc[question["winner"]["run_ids"], "lr"].unique().tolist()
    assert len(chosen) == 1 and means[chosen[0]] == means.max()
    assert question["winner"]["seeds"] == ([0, 1] if chosen[0] == best_lr else [0])
