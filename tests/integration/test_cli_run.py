"""`runner run | list | show | predict | export` end to end on the synthetic set, and every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from runner.cli import app
from tests.support import said_once
from vjepa_core.analysis.stats import run_chance_test
from vjepa_core.store.warehouse import Warehouse

CLI = CliRunner()
FAST = ["--epochs", "2", "--batch-size", "4", "--train-views", "2", "--quiet"]


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> dict:
    """One real `runner run --strategy lora` with a zero-byte and a garbage video among the good ones."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    shutil.copytree(synthetic_small, data)
    (data / "up" / "empty.mp4").write_bytes(b"")
    (data / "down" / "garbage.avi").write_bytes(b"not a video at all" * 100)
    warehouse, results = root / "vjepa.duckdb", root / "results"
    result = invoke("run", "--data", data, "--strategy", "lora", "--model", "tiny", *FAST, "--warehouse", warehouse,
                    "--results", results)
    assert result.exit_code == 0, result.output
    run_id = Warehouse(warehouse).runs()["run_id"].item()
    return {"root": root, "data": data, "warehouse": warehouse, "results": results, "run_id": run_id,
            "output": result.output}


def test_run_records_everything(lora_run: dict) -> None:
    store = Warehouse(lora_run["warehouse"])
    run = store.get_run(lora_run["run_id"])
    assert run["status"] == "success" and run["strategy"] == "lora" and run["model"] == "preset:tiny"
    assert run["videos_skipped"] == 2
    assert {Path(v["path"]).name for v in run["skipped_videos"]} == {"empty.mp4", "garbage.avi"}
    assert run["num_train"] + run["num_val"] + run["num_test"] == 24
    assert 0 < run["trainable_params"] < run["total_params"]
    assert run["spec"]["strategy"] == "lora" and run["versions"]["torch"]
    assert run["train_seconds"] > 0 and run["inference_ms"] > 0 and run["peak_memory_bytes"] > 0
    assert len(store.table("epochs", run["run_id"])) == 2
    classes = store.table("class_metrics", run["run_id"])
    assert len(classes) == 2 * 6 and set(classes["split"]) == {"val", "test"}
    assert store.table("confusion", run["run_id"]).query("split == 'test'")["count"].sum() == run["num_test"]
    predictions = store.table("predictions", run["run_id"])
    assert len(predictions) == run["num_val"] + run["num_test"]
    test = predictions.query("split == 'test'")
    assert run["test_acc"] == pytest.approx(test["correct"].mean())
    assert "unreadable video(s) skipped" in lora_run["output"]
    chance = run_chance_test(run, classes)
    printed = " ".join(lora_run["output"].split())  # rich wraps long lines
    assert f"chance {100 * chance.chance:.1f}%, binomial p = {chance.p_value:.2g}" in printed


def test_rerun_is_skipped_and_force_reruns(lora_run: dict) -> None:
    args = ["run", "--data", lora_run["data"], "--strategy", "lora", "--model", "tiny", *FAST,
            "--warehouse", lora_run["warehouse"],
            "--results", lora_run["results"]]
    before = Warehouse(lora_run["warehouse"]).get_run(lora_run["run_id"])["finished_at"]
    assert invoke(*args).exit_code == 0
    assert Warehouse(lora_run["warehouse"]).get_run(lora_run["run_id"])["finished_at"] == before


def test_list_show_export(lora_run: dict) -> None:
    warehouse = ["--warehouse", lora_run["warehouse"]]
    listed = invoke("list", *warehouse)
    assert listed.exit_code == 0 and lora_run["run_id"] in listed.output
    row = next(line for line in listed.output.splitlines() if lora_run["run_id"] in line)
    assert row.split()[1:3] == ["lora", "tiny"]  # piped: one row per line; a preset by its name, as elsewhere
    assert all(cell in row for cell in ("success", "%"))
    # A narrow terminal loses whole columns, named under the table, never a figure cut short.
    narrow = CLI.invoke(app, ["list", *warehouse], env={"COLUMNS": "80"})
    row = next(line for line in narrow.output.splitlines() if lora_run["run_id"] in line)
    assert len(row.rstrip()) <= 80 and row.count("%") == 2 and "…%" not in row
    best_val = Warehouse(lora_run["warehouse"]).get_run(lora_run["run_id"])["best_val_acc"]
    assert f"{100 * best_val:.1f}%" in row.split()  # whole, not cut to "0.…"
    assert "not shown at this width: " in narrow.output and "started" in narrow.output.split("not shown")[1]
    shown = invoke("show", lora_run["run_id"][:6], *warehouse)
    assert shown.exit_code == 0 and "test per class" in shown.output and "confusion" in shown.output
    rates = Warehouse(lora_run["warehouse"]).table("epochs", lora_run["run_id"])["lr"]
    assert all(f" {rate:.3g} " in shown.output for rate in rates)  # a learning rate is never "0.000"
    as_json = json.loads(invoke("show", lora_run["run_id"], "--json", *warehouse).output)
    assert as_json["run_id"] == lora_run["run_id"]
    chance = run_chance_test(as_json, Warehouse(lora_run["warehouse"]).table("class_metrics", lora_run["run_id"]))
    assert (as_json["chance_acc"], as_json["above_chance_p"]) == pytest.approx((chance.chance, chance.p_value))
    assert "vs chance" in shown.output
    # One seed: the interval is Wilson's over the test videos, never the point itself.
    low, high = stats.binomtest(round(as_json["test_acc"] * as_json["num_test"]), as_json["num_test"]).proportion_ci(
        method="wilson")
    assert (as_json["test_acc_ci_low"], as_json["test_acc_ci_high"]) == pytest.approx((low, high), abs=1e-9)
    assert as_json["test_acc_interval"] == f"Wilson over {as_json['num_test']} videos"
    assert "test acc 95% CI" in shown.output and f"Wilson over {as_json['num_test']} videos" in shown.output
    for fmt in ("csv", "parquet"):
        out = lora_run["root"] / f"export-{fmt}"
        assert invoke("export", "--format", fmt, "--out", out, *warehouse).exit_code == 0
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        assert len(read(out / f"predictions.{fmt}")) == len(Warehouse(lora_run["warehouse"]).table("predictions"))


def test_predict_matches_the_recorded_test_prediction(lora_run: dict) -> None:
    store = Warehouse(lora_run["warehouse"])
    row = store.table("predictions", lora_run["run_id"]).query("split == 'test'").iloc[0]
    checkpoint = lora_run["results"] / "checkpoints" / lora_run["run_id"]
    result = invoke("predict", checkpoint, row["video"], "--json", "--top-k", "6")
    assert result.exit_code == 0, result.output
    top = json.loads(result.output.strip().splitlines()[-1])["top"]
    assert len(top) == 6 and top[0]["label"] == row["pred_class"]
    # cached fp16 tokens vs a fresh fp32 encoder pass: the same up to half precision
    assert top[0]["prob"] == pytest.approx(row["confidence"], abs=2e-3)


def test_failed_run_is_recorded(tmp_path: Path, synthetic_small: Path) -> None:
    """A model folder whose config is fine but whose weights are corrupt fails inside the run."""
    from vjepa_core.models import load_model

    model_dir = tmp_path / "broken-model"
    load_model("tiny", ["a", "b"]).save_pretrained(model_dir)
    (model_dir / "model.safetensors").write_bytes(b"corrupt")
    warehouse = tmp_path / "vjepa.duckdb"
    result = invoke("run", "--data", synthetic_small, "--strategy", "head", "--model", model_dir, *FAST,
                    "--warehouse", warehouse, "--results", tmp_path / "results")
    assert result.exit_code == 1
    runs = Warehouse(warehouse).runs()
    assert runs["status"].tolist() == ["failed"] and runs["error"].item()
    assert Warehouse(warehouse).table("predictions").empty


def make_bad_data(tmp_path: Path, synthetic_small: Path, case: str) -> Path:
    data = tmp_path / case
    if case == "empty":
        data.mkdir()
    elif case == "class-without-videos":
        shutil.copytree(synthetic_small, data)
        (data / "jump").mkdir()
    return data


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "{tmp}/missing"], "missing"),
    (["--data", "{tmp}/empty"], "no class folders"),
    (["--data", "{tmp}/class-without-videos"], "jump"),
    (["--videos-per-class", "50"], "videos"),
    (["--strategy", "magic"], "strategy"),
    (["--model", "huge"], "model"),
    (["--lora-rank", "0"], "lora_rank"),
    (["--lr", "0"], "lr"),
    (["--frames-per-clip", "0"], "frames_per_clip"),
    (["--device", "cuda"], "CUDA"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, synthetic_small: Path, args: list[str],
                                          message: str) -> None:
    for case in ("empty", "class-without-videos"):
        make_bad_data(tmp_path, synthetic_small, case)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = {"--data": str(synthetic_small)}
    if "--data" in args:
        base = {}
    warehouse = tmp_path / "vjepa.duckdb"
    result = invoke("run", *[x for kv in base.items() for x in kv], *args, "--quiet", "--warehouse", warehouse,
                    "--results", tmp_path / "results")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and message.lower() in result.output.lower()
    assert "Traceback" not in result.output
    assert not warehouse.exists()  # nothing half-written


def test_predict_bad_inputs(lora_run: dict, tmp_path: Path) -> None:
    checkpoint = lora_run["results"] / "checkpoints" / lora_run["run_id"]
    video = next(lora_run["data"].glob("up/*.mp4"))
    other_base = invoke("predict", checkpoint, video, "--model", "small")
    assert other_base.exit_code == 2 and "different weights" in other_base.output
    not_checkpoint = invoke("predict", tmp_path, video)
    assert not_checkpoint.exit_code == 2 and "manifest.json" in not_checkpoint.output
    corrupt = invoke("predict", checkpoint, lora_run["data"] / "up" / "empty.mp4")
    assert corrupt.exit_code == 2 and "empty.mp4" in corrupt.output


def test_a_text_file_named_mp4_is_one_line_said_once(lora_run: dict, tmp_path: Path) -> None:
    """The real console process: decoders' native complaints stay out of stderr, the reason is said once."""
    bad = tmp_path / "bad.mp4"
    bad.write_text("these are notes, not a video")
    checkpoint = lora_run["results"] / "checkpoints" / lora_run["run_id"]
    proc = subprocess.run([sys.executable, "-m", "runner", "predict", str(checkpoint), str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {bad}: not a readable video (Invalid data found when "
                                                "processing input)"]
    assert said_once(proc.stderr.strip()) and not said_once("x.mp4: not a video (not a video (bad))")


def test_real_command_line_exit_code(tmp_path: Path) -> None:
    """The installed console script, not the in-process runner: exit 2 and one line on stderr."""
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--data", str(tmp_path / "nope"), "--quiet",
                           "--warehouse", str(tmp_path / "w.duckdb")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr and "Traceback" not in proc.stderr
