"""A sweep's runs trained side by side (`--joint`) give exactly what they give one at a time.

The same sweep (the official probe recipe: feature layers, a deeper pooler, lr x weight decay, no warmup;
plus a LoRA strategy, whose dropout draws must stay each run's own, and a run with other epochs and early
stopping) runs twice on `synthetic_small`: `--joint 1` then `--joint 5` on a copy of the same token cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.store.warehouse import Warehouse

SWEEP = {
    "name": "joint_check",
    "base": {"model": "tiny", "epochs": 2, "batch_size": 4, "train_views": 2, "frames_per_clip": 8,
             "warmup_ratio": 0.0, "feature_layers": [0, 1], "pooler_layers": 2},
    "axes": {"strategies": ["pooler_head", "pooler_head_lora"], "lr": [1.0e-3, 5.0e-3]},
    "include": [{"strategy": "pooler_head", "lr": 3.0e-3, "weight_decay": 0.8, "epochs": 3,
                 "early_stopping_patience": 1}],
    "phase2": {"top_k": 1, "set": {"seeds": [1]}},
}


def sweep(tmp_path: Path, data: Path, name: str, joint: int, cache: Path | None = None) -> tuple[Warehouse, Path]:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({**SWEEP, "base": {**SWEEP["base"], "data": str(data)}}))
    results = tmp_path / name
    if cache is not None:
        shutil.copytree(cache, results / "cache")
    result = CliRunner().invoke(app, ["sweep", str(spec), "--joint", str(joint), "--workers", "0", "-q",
                                      "--warehouse", str(tmp_path / f"{name}.duckdb"), "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert "6 run(s): 6 ran, 0 skipped (already done), 0 failed" in result.output
    return Warehouse(tmp_path / f"{name}.duckdb"), results


def rows(store: Warehouse, table: str, keys: list[str]) -> list[dict]:
    frame = store.table(table).sort_values(keys).reset_index(drop=True)
    return frame.to_dict("records")


def test_runs_trained_together_equal_runs_trained_alone(tmp_path: Path, synthetic_small: Path) -> None:
    alone, alone_results = sweep(tmp_path, synthetic_small, "alone", joint=1)
    together, together_results = sweep(tmp_path, synthetic_small, "together", joint=5,
                                       cache=alone_results / "cache")
    a, b = alone.runs().set_index("run_id").sort_index(), together.runs().set_index("run_id").sort_index()
    assert list(a.index) == list(b.index) and len(a) == 6  # the same run ids, phase 2's choice included
    assert (b["encoded_clips"] == 0).all()  # the copied cache served every view
    for column in ("test_acc", "test_loss", "best_val_acc", "best_epoch", "train_acc", "trainable_params"):
        assert list(b[column]) == pytest.approx(list(a[column]), rel=1e-6), column
    epochs = rows(alone, "epochs", ["run_id", "epoch"])
    assert len(epochs) >= 12  # 2 epochs a run, up to 3 with early stopping: zip(strict) below checks each count
    for x, y in zip(epochs, rows(together, "epochs", ["run_id", "epoch"]), strict=True):
        assert (x["run_id"], x["epoch"]) == (y["run_id"], y["epoch"])
        assert [x[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")] == pytest.approx(
            [y[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")], rel=1e-6, abs=1e-9)
    keys = ["run_id", "split", "video"]
    for x, y in zip(rows(alone, "predictions", keys), rows(together, "predictions", keys), strict=True):
        assert (x["video"], x["pred_class"]) == (y["video"], y["pred_class"])
        assert x["confidence"] == pytest.approx(y["confidence"], rel=1e-6)
    class_keys = ["run_id", "split", "class_name"]
    assert rows(alone, "class_metrics", class_keys) == rows(together, "class_metrics", class_keys)
    for run_id in a.index:
        weights = [load_file(r / "checkpoints" / run_id / "trained.safetensors")
                   for r in (alone_results, together_results)]
        assert weights[0].keys() == weights[1].keys() and any(k.startswith("pooler.") for k in weights[0])
        for name in weights[0]:
            assert weights[0][name].allclose(weights[1][name], rtol=1e-5, atol=1e-7), name


def test_the_official_probe_sweep_plans_its_grid(tmp_path: Path) -> None:
    """`runner sweep experiments/vjepa2_probe.yaml --dry-run`: 20 runs, every lr x weight decay, nothing run."""
    spec = Path(__file__).resolve().parents[2] / "experiments" / "vjepa2_probe.yaml"
    result = CliRunner().invoke(app, ["sweep", str(spec), "--model", "small", "--dry-run",
                                      "--warehouse", str(tmp_path / "w.duckdb")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "20 run(s), 0 done" in result.output and "by best_val_acc" in result.output
    rows = [line.split("│") for line in result.output.splitlines() if "pooler_head" in line]
    assert {(float(row[6]), float(row[7])) for row in rows} == {
        (lr, wd) for lr in (5e-3, 3e-3, 1e-3, 3e-4, 1e-4) for wd in (0.01, 0.1, 0.4, 0.8)}
    assert not (tmp_path / "w.duckdb").exists()
