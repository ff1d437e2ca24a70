"""`runner pretrain` end to end: a save_pretrained folder every command takes, resume after kill -9, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.data import make_synthetic
from vjepa_core.store.warehouse import Warehouse

CLI = CliRunner()
FAST = ["--epochs", "3", "--batch-size", "8", "--quiet"]


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


def where(root: Path) -> list[str | Path]:
    return ["--warehouse", root / "w.duckdb", "--results", root / "results"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> dict:
    root = tmp_path_factory.mktemp("pretrain")
    result = invoke("pretrain", "--data", synthetic_small, "--probe-data", synthetic_small, *FAST, *where(root))
    assert result.exit_code == 0, result.output
    folder = next((root / "results" / "pretrained").iterdir())
    return {"root": root, "folder": folder, "output": result.output}


def test_the_output_is_a_complete_save_pretrained_folder_with_its_manifest(pretrained: dict) -> None:
    folder = pretrained["folder"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    weights = load_file(folder / "model.safetensors")
    assert any(k.startswith("encoder.") for k in weights) and any(k.startswith("predictor.") for k in weights)
    manifest = json.loads((folder / "manifest.json").read_text())
    run = manifest["run"]
    assert run["pretrain_id"] == folder.name and run["status"] == "success" and run["num_videos"] == 24
    assert run["chosen_by"] == "probe_acc" and 1 <= run["chosen_epoch"] <= 3
    kept = manifest["epochs"][run["chosen_epoch"]]
    assert run["probe_acc"] == max(r["probe_acc"] for r in manifest["epochs"][1:]) == kept["probe_acc"]
    assert run["data_fingerprint"] and run["spec"]["masks"] == "8x0.15,2x0.7"
    assert [r["epoch"] for r in manifest["epochs"]] == [0, 1, 2, 3] and manifest["epochs"][0]["loss"] is None
    assert all(r["loss"] > 0 and r["effective_rank"] >= 1 and r["embedding_std"] > 0 for r in manifest["epochs"][1:])
    summary = " ".join(pretrained["output"].split())
    # Every figure of the kept epoch is that epoch's, its loss too (not the last epoch's).
    first = manifest["epochs"][0]
    assert (f"pretrained {folder.name}: kept epoch {run['chosen_epoch']} of 3 (by probe_acc), loss {kept['loss']:.4f}, "
            f"effective rank {first['effective_rank']:.1f} -> {kept['effective_rank']:.1f}") in summary


def test_the_warehouse_holds_the_run_and_its_epochs(pretrained: dict) -> None:
    store = Warehouse(pretrained["root"] / "w.duckdb")
    runs = store.pretrain_table("pretrain_runs")
    assert runs.pretrain_id.tolist() == [pretrained["folder"].name] and runs.status.tolist() == ["success"]
    assert runs.masked_ratio.item() > 0.6 and runs.train_seconds.item() > 0
    epochs = store.pretrain_table("pretrain_epochs", pretrained["folder"].name)
    manifest = json.loads((pretrained["folder"] / "manifest.json").read_text())
    assert epochs.epoch.tolist() == [0, 1, 2, 3]
    assert epochs.probe_acc.tolist() == pytest.approx([r["probe_acc"] for r in manifest["epochs"]])


def test_every_command_takes_the_folder_as_model_and_cache_keys_follow_the_weights(pretrained: dict,
                                                                                   synthetic_small: Path) -> None:
    root, folder = pretrained["root"], pretrained["folder"]
    cache = root / "results" / "cache"
    groups_before = set(os.listdir(cache)) if cache.exists() else set()
    for model in ("tiny", folder):
        result = invoke("run", "--data", synthetic_small, "--strategy", "head", "--model", model, "--epochs", "1",
                        "--batch-size", "4", "--train-views", "1", "--quiet", *where(root))
        assert result.exit_code == 0, result.output
    runs = Warehouse(root / "w.duckdb").runs()
    assert sorted(runs.model) == sorted(["preset:tiny", str(folder.resolve())])
    groups = {json.loads((cache / g / "group.json").read_text())["encoder"]
              for g in set(os.listdir(cache)) - groups_before}
    assert len(groups) == 2  # the same geometry, other weights: other cache entries


def test_a_finished_run_is_not_trained_again(pretrained: dict, synthetic_small: Path) -> None:
    before = (pretrained["folder"] / "model.safetensors").stat().st_mtime_ns
    result = invoke("pretrain", "--data", synthetic_small, "--probe-data", synthetic_small, *FAST,
                    *where(pretrained["root"]))
    assert result.exit_code == 0 and "already pretrained" in result.output
    assert (pretrained["folder"] / "model.safetensors").stat().st_mtime_ns == before


def test_kill_9_then_the_same_command_resumes_from_the_last_finished_epoch(tmp_path: Path, synthetic_small: Path,
                                                                           pretrained: dict) -> None:
    args = ["pretrain", "--data", str(synthetic_small), "--probe-data", str(synthetic_small), *FAST,
            *map(str, where(tmp_path))]
    proc = subprocess.Popen([sys.executable, "-c", "from runner.cli import main; main()", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    work = tmp_path / "results" / "pretrained" / pretrained["folder"].name / ".train"
    deadline = time.monotonic() + 120
    while not (work / "epoch-0001" / "state.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    saved = json.loads((work / "epoch-0001" / "state.json").read_text())["history"]
    assert not (tmp_path / "w.duckdb").exists()  # nothing recorded for a run that has not finished

    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "resumed after epoch 1" in result.output
    folder = work.parent
    assert not work.exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["epochs"][:2] == [{"pretrain_id": folder.name, **row} for row in saved]
    # Random draws come from (seed, epoch): the resumed run is the uninterrupted one, weight for weight.
    resumed, straight = load_file(folder / "model.safetensors"), load_file(pretrained["folder"] / "model.safetensors")
    assert resumed.keys() == straight.keys()
    assert all((resumed[k] - straight[k]).abs().max() < 1e-5 for k in resumed)


def _garbage_set(root: Path) -> Path:
    (root / "clips").mkdir(parents=True)
    for i in range(3):
        (root / "clips" / f"bad_{i}.mp4").write_bytes(b"not a video" * 50)
    return root


@pytest.mark.parametrize(("case", "message"), [
    ("undecodable", "none of the 3 videos could be decoded"),
    ("short", "every video is shorter than frames_per_clip=16"),
    ("not_vjepa", "not a V-JEPA 2 one"),
    ("masks", "leaving the context encoder nothing to see"),
    ("masks_syntax", "cannot read"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, synthetic_small: Path, case: str,
                                                         message: str) -> None:
    data, extra = synthetic_small, []
    if case == "undecodable":
        data = _garbage_set(tmp_path / "garbage")
    elif case == "short":
        data = make_synthetic(tmp_path / "short", videos_per_class=1, num_frames=8, classes=("up", "down"))
    elif case == "not_vjepa":
        model = tmp_path / "bert"
        model.mkdir()
        (model / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
        extra = ["--model", model]
    elif case == "masks":
        extra = ["--masks", "8x0.15,6x0.9"]
    else:
        extra = ["--masks", "8x"]
    out = tmp_path / "out"
    result = invoke("pretrain", "--data", data, *extra, *FAST, *where(out))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not out.exists()  # no warehouse, no results folder


def test_help_explains_the_objective_and_every_option() -> None:
    result = invoke("pretrain", "--help")
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for words in ("context encoder sees only the unmasked tokens", "--probe-data", "--masks", "--ema-start",
                  "resumes a killed run"):
        assert words in text
