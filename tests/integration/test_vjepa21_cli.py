"""V-JEPA 2.1 through the CLI: runs on cached tokens and on pixels, predict (every CPU engine and --window),
embed (the token cache reused), and `runner pretrain` refused in one line. Model: the tiny-2.1 preset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.inference.engines import CPU, auto_order
from vjepa_core.inference.engines.check import PROB_TOLERANCE
from vjepa_core.inference.predict import Predictor
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.store.warehouse import Warehouse

CLI = CliRunner()
FAST = ["--model", "tiny-2.1", "--epochs", "1", "--batch-size", "4", "--train-views", "2", "--quiet"]


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> dict:
    """pooler_head (frozen encoder: cached tokens) and lora_backbone (the encoder adapted: pixels every step)."""
    root = tmp_path_factory.mktemp("v21")
    places = ["--warehouse", root / "vjepa.duckdb", "--results", root / "results"]
    for strategy in ("pooler_head", "lora_backbone"):
        result = invoke("run", "--data", synthetic_small, "--strategy", strategy, *FAST, *places)
        assert result.exit_code == 0, result.output
    store = Warehouse(root / "vjepa.duckdb")
    ids = dict(zip(store.runs()["strategy"], store.runs()["run_id"], strict=True))
    return {"root": root, "places": places, "ids": ids, "store": store}


def test_runs_record_the_21_model(runs: dict) -> None:
    for strategy, run_id in runs["ids"].items():
        run = runs["store"].get_run(run_id)
        assert run["status"] == "success" and run["model"] == "preset:tiny-2.1", strategy
        assert 0 < run["trainable_params"] < run["total_params"]
        assert (runs["root"] / "results" / "checkpoints" / run_id / "manifest.json").is_file()


def test_predict_under_the_default_engine_agrees_with_fp32(runs: dict, synthetic_small: Path) -> None:
    """`auto` (OpenVINO int8 on a CPU): the 2.1 encoder with its LoRA merged exports, quantizes and agrees on every
    video; the ONNX Runtime engine's turn is the released Space's (test_release_vjepa21)."""
    checkpoint = runs["root"] / "results" / "checkpoints" / runs["ids"]["lora_backbone"]
    loaded = load_checkpoint(checkpoint)
    engines = runs["root"] / "engines"
    reference = Predictor(loaded, device="cpu", engine="fp32")
    default = Predictor(loaded, device="cpu", engine="auto", engine_cache=engines)
    assert default.engine.engine in auto_order(CPU), default.engine.fallback  # an int8 engine, not a fallback to fp32
    videos = sorted(synthetic_small.rglob("*_000.*"))
    for video in videos:
        expected, got = reference.classify(video).probs, default.classify(video).probs
        assert max(abs(got[label] - expected[label]) for label in expected) <= PROB_TOLERANCE, video.name
    assert len(videos) == 6


def test_predict_with_windows(runs: dict, synthetic_small: Path) -> None:
    checkpoint = runs["root"] / "results" / "checkpoints" / runs["ids"]["pooler_head"]
    video = next((synthetic_small / "left").iterdir())
    result = invoke("predict", checkpoint, video, "--window", "1", "--engine", "fp32")
    assert result.exit_code == 0, result.output
    starts = [float(s) for s in re.findall(r"^\s+([\d.]+) -\s+[\d.]+ s", result.stdout, flags=re.M)]
    assert len(starts) >= 3 and starts == sorted(starts)


def test_embed_reuses_the_token_cache(runs: dict, synthetic_small: Path) -> None:
    args = ("embed", synthetic_small, "--model", "tiny-2.1", "--engine", "fp32", *runs["places"], "-q")
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    counts = [tuple(map(int, re.search(r"encoded clips: (\d+) \(cached: (\d+)\)", r.stdout).groups()))
              for r in (first, second)]
    assert sum(counts[0]) == 24 and counts[0][1] > 0  # the runs' evaluation clips are in the same cache
    assert counts[1] == (0, 24)


def test_pretrain_refuses_21_in_one_line(runs: dict, synthetic_small: Path) -> None:
    result = invoke("pretrain", "--data", synthetic_small, "--model", "tiny-2.1", "--epochs", "1", *runs["places"])
    assert result.exit_code == 2
    assert "is a V-JEPA 2.1 encoder, and runner pretrain implements V-JEPA 2's objective" in result.output
    assert result.output.strip().count("\n") == 0
