"""One grouping key: the matrix summary, the dashboard's leaderboard and `runner compare` agree on what one
configuration is (a spec without its seed), on a real warehouse file where the older groupings disagreed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dashboard.queries import run_rows, standings
from runner.cli import app
from runner.commands.matrix import summary_table
from runner.orchestration.matrix import summary_frame
from vjepa_core.analysis.configurations import find_configuration, seed_pairs, with_configurations
from vjepa_core.errors import UserError
from vjepa_core.spec import RunSpec, spec_columns
from vjepa_core.store.warehouse import RunRecord, Warehouse

VIDEOS = [f"/videos/x/{label}/{label}_{i}.mp4" for label in ("up", "down") for i in range(4)]
# (spec values, seed -> test videos right out of 8): lora at two lrs is two configurations, not one cell.
RUNS = [
    ({"strategy": "head"}, {0: 4, 1: 5}),
    ({"strategy": "lora", "lr": 1e-3}, {0: 6, 1: 6}),
    ({"strategy": "lora", "lr": 1e-2}, {0: 2, 1: 3}),
]


def _record(spec: RunSpec, right: int, started: datetime) -> RunRecord:
    predictions = [{"split": "test", "video": video, "true_class": video.split("/")[3],
                    "pred_class": video.split("/")[3] if i < right else "other", "confidence": 0.9,
                    "correct": i < right} for i, video in enumerate(VIDEOS)]
    run = {"run_id": spec.run_id, **spec_columns(spec), "model": "preset:tiny", "dataset": "x", "status": "success",
           "spec": spec.to_dict(), "started_at": started, "test_acc": right / 8, "best_val_acc": right / 8,
           "num_train": 4, "num_val": 8, "num_test": 8, "num_classes": 2, "trainable_params": 1000,
           "train_seconds": 1.0, "inference_ms": 1.0}
    supports = [{"split": "test", "class_name": label, "support": 4} for label in ("up", "down")]
    return RunRecord(run=run, predictions=predictions, class_metrics=supports)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "w.duckdb"
    store, started = Warehouse(path), datetime(2026, 1, 1)
    for values, seeds in RUNS:
        for seed, right in seeds.items():
            started += timedelta(minutes=1)
            spec = RunSpec(data="/videos/x", videos_per_class=2, epochs=1, seed=seed, **values)
            store.write_run(_record(spec, right, started))
    failed = RunSpec(strategy="full", data="/videos/x", videos_per_class=2, epochs=1, lr=0.5)
    store.write_run(RunRecord(run={"run_id": failed.run_id, **spec_columns(failed), "status": "failed",
                                   "spec": failed.to_dict(), "error": "RuntimeError: loss is NaN"}))
    return path


def test_the_matrix_summary_the_leaderboard_and_compare_group_alike(warehouse: Path) -> None:
    raw = Warehouse(warehouse).runs()
    ok = raw[raw["status"] == "success"]
    # The groupings before one key: (model, strategy, data size, frames) merged both lrs of lora into one row.
    assert ok.groupby(["model", "strategy", "videos_per_class", "frames_per_clip"]).ngroups == 2
    summary = summary_frame(raw).set_index("config_id")
    board = standings.leaderboard(run_rows.load_runs(warehouse)).set_index("config_id")
    assert len(summary) == len(board) == 3 and set(summary.index) == set(board.index)
    for key, row in board.iterrows():
        assert summary.loc[key, "n"] == row["n"] == 2
        assert summary.loc[key, "test_acc_mean"] == pytest.approx(row["test_acc_mean"])
        assert summary.loc[key, "config"] == row["config"]  # one label too
    table = summary_table(summary.reset_index(), title="t")
    assert list(table.columns[0].cells) == ["head · lr=0.001", "lora · lr=0.001", "lora · lr=0.01"]

    # `runner compare` takes a configuration id (or a prefix) and pairs its seeds: the leaderboard's runs.
    key = {label: config for config, label in board["config"].items()}
    best, head = key["lora · lr=0.001"], key["head · lr=0.001"]
    result = CliRunner().invoke(app, ["compare", head[:8], best, "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == (f"head · lr=0.001 ({head[:8]}): 56.2%   lora · lr=0.001 ({best[:8]}): 75.0%   "
                        "(mean over seed(s) 0, 1)")
    assert lines[1].startswith(f"seed 0: lora · lr=0.001 ({best[:8]}) vs head · lr=0.001 ({head[:8]}): +25.0 "
                               "points on 8 shared videos")
    assert lines[2].startswith("seed 1: ") and "+12.5 points on 8 shared videos" in lines[2]
    assert lines[3].startswith("over 2 seeds: ") and "+18.8 points (mean of the per-seed differences)" in lines[3]
    assert lines[3].endswith("within noise")  # two seeds: +25 and +12.5 give a t-interval across zero
    runs = with_configurations(raw)
    pairs = seed_pairs(runs[runs["config_id"] == head], runs[runs["config_id"] == best])
    assert [seed for seed, _, _ in pairs] == [0, 1]
    assert {run for _, a, b in pairs for run in (a, b)} == {*board.loc[head, "run_ids"].split(","),
                                                            *board.loc[best, "run_ids"].split(",")}


def test_compare_keeps_run_ids_first_and_says_what_it_cannot_pair(warehouse: Path) -> None:
    raw = with_configurations(Warehouse(warehouse).runs())
    head0 = raw[(raw["strategy"] == "head") & (raw["seed"] == 0)]["run_id"].iloc[0]
    lora1 = raw[(raw["strategy"] == "lora") & (raw["seed"] == 1) & (raw["lr"] == 1e-3)]["run_id"].iloc[0]
    two_runs = CliRunner().invoke(app, ["compare", head0, lora1, "--warehouse", str(warehouse)])
    assert two_runs.exit_code == 0 and two_runs.output.startswith(f"head ({head0[:8]}): 50.0%   lora ({lora1[:8]})")
    assert len(two_runs.output.strip().splitlines()) == 2  # one paired test, as before configurations counted
    # A run against a configuration: the configuration's run of the same seed.
    lora_high = raw[(raw["strategy"] == "lora") & (raw["lr"] == 1e-2)]["config_id"].iloc[0]
    mixed = CliRunner().invoke(app, ["compare", head0, lora_high, "--warehouse", str(warehouse)])
    assert mixed.exit_code == 0 and "(mean over seed(s) 0)" in mixed.output and "seed 0: " in mixed.output
    assert "over 1 seed: " in mixed.output and "-25.0 points" in mixed.output
    failed = raw[raw["status"] == "failed"]["config_id"].iloc[0]
    nothing = CliRunner().invoke(app, ["compare", head0, failed, "--warehouse", str(warehouse)])
    assert nothing.exit_code == 2 and "share no seed that succeeded in both" in nothing.output
    missing = CliRunner().invoke(app, ["compare", head0, "ffffffff", "--warehouse", str(warehouse)])
    assert missing.exit_code == 2 and "error: run 'ffffffff' is not in" in missing.output
    # Where a CLI user finds a configuration id: `runner show` prints it.
    shown = CliRunner().invoke(app, ["show", head0, "--warehouse", str(warehouse)], env={"COLUMNS": "200"})
    head = raw.set_index("run_id").loc[head0, "config_id"]
    assert shown.exit_code == 0 and f"configuration      {head}" in shown.output


def test_a_configuration_prefix_must_name_one(warehouse: Path) -> None:
    runs = with_configurations(Warehouse(warehouse).runs())
    key = runs["config_id"].iloc[0]
    assert find_configuration(runs, key) == key == find_configuration(runs, key[:6])
    assert find_configuration(runs, "zz") is None
    with pytest.raises(UserError, match="ambiguous"):
        find_configuration(runs, "")


def test_rows_without_a_spec_are_configurations_of_their_own() -> None:
    runs = pd.DataFrame({"run_id": ["a", "b"], "status": "success", "strategy": "head"})
    assert with_configurations(runs)["config_id"].tolist() == ["a", "b"]
