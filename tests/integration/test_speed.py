"""Speed without changing results: cached training equals uncached training; `runner bench --json` reports.

Speed targets are not asserted here (they live in the benchmark's output): these tests check that the
fast path computes the same thing and that the benchmark's figures are present and consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.training.experiment import Paths, prepare_data, run_experiment


def test_cached_and_uncached_training_give_the_same_predictions(synthetic_small: Path, tmp_path: Path) -> None:
    spec = RunSpec(strategy="pooler_head", data=str(synthetic_small), model="tiny", epochs=2, batch_size=4,
                   frames_per_clip=8, augment=False)
    data = prepare_data(spec, tmp_path, ExecOptions(progress=False))
    records = {cache: run_experiment(spec, Paths(tmp_path / str(cache)), ExecOptions(progress=False, cache=cache),
                                     data) for cache in (True, False)}
    cached, uncached = (pd.DataFrame(records[c].predictions).sort_values(["split", "video"]) for c in (True, False))
    assert len(cached) == len(uncached) == 2 * 6  # val + test videos of synthetic_small
    assert list(cached["pred_class"]) == list(uncached["pred_class"])
    # The cache holds fp16 tokens; the uncached run keeps fp32: differences stay at fp16 rounding level.
    assert (cached["confidence"].to_numpy() - uncached["confidence"].to_numpy()).__abs__().max() < 2e-3
    for a, b in zip(records[True].epochs, records[False].epochs, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) < 2e-3 and abs(a["val_loss"] - b["val_loss"]) < 2e-3
    assert records[True].run["encoded_clips"] > 0 and records[False].run.get("encoded_clips") is None
    assert records[False].run["decode_seconds"] > 0 and records[True].run["fit_seconds"] > 0


def test_bench_json_on_a_tiny_workload(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "bench", "--json", "--model", "tiny", "--classes", "2", "--train-per-class", "2", "--eval-per-class", "1",
        "--train-views", "2", "--frames-per-clip", "8", "--epochs", "2", "--naive-epochs", "1",
        "--strategies", "head,pooler_head", "--work-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for key in ("speedup_5_epochs", "speedup_20_epochs", "wall_over_bound", "decode_clips_per_s",
                "encoder_clips_per_s", "peak_memory_bytes"):
        assert out[key] > 0, key
    assert out["cached_views"] == 2 * 2 * 2 + 2 * 2  # train videos x views + val and test videos
    ours = {run["strategy"]: run for run in out["ours_runs"]}
    assert ours["head"]["encoded_clips"] == out["cached_views"] and ours["pooler_head"]["encoded_clips"] == 0
    assert all(run["encoded_clips"] is None for run in out["naive_runs"])
    assert out["lower_bound_seconds"] == (out["bound_encode_seconds"] + out["bound_pool_seconds"]
                                          + out["bound_trainable_seconds"])
    assert out["extrapolated"]["20_epochs"] == {"naive": True, "ours": True}
    assert out["extrapolated"]["2_epochs"] == {"naive": True, "ours": False}
    assert out["ours_wall_seconds"] > out["bound_trainable_seconds"]


def test_bench_rejects_bad_input() -> None:
    result = CliRunner().invoke(app, ["bench", "--strategies", "full"])
    assert result.exit_code == 2 and "frozen-encoder strategies" in result.output
