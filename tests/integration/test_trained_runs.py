"""What the runner wrote for the shared `trained_runs` fixture, and what the analysis reads back from it."""

from __future__ import annotations

import math

import pytest

from runner.orchestration.matrix import summary_frame
from tests.support import TRAINED_SEEDS, TRAINED_STRATEGIES, TrainedRuns
from vjepa_core.analysis.stats import compare_runs, run_chance_test
from vjepa_core.store.warehouse import Warehouse


def test_trained_runs_rows(trained_runs: TrainedRuns) -> None:
    store = Warehouse(trained_runs.warehouse)
    runs = store.runs(matrix_id=trained_runs.matrix_id)
    assert len(runs) == len(TRAINED_STRATEGIES) * len(TRAINED_SEEDS) + 1
    assert (runs["status"] == "success").sum() == len(trained_runs.run_ids)
    for run_id in trained_runs.run_ids:
        run = store.get_run(run_id)
        assert 0 <= run["test_acc"] <= 1 and run["trainable_params"] > 0
        assert len(store.table("epochs", run_id)) == 2
        predictions = store.table("predictions", run_id)
        assert set(predictions["split"]) == {"val", "test"}
        assert len(predictions) == run["num_val"] + run["num_test"]
        confusion = store.table("confusion", run_id)
        assert confusion.query("split == 'test'")["count"].sum() == run["num_test"]
        assert (trained_runs.results / "checkpoints" / run_id / "manifest.json").is_file()


def test_summary_frame_has_mean_and_std_over_seeds(trained_runs: TrainedRuns) -> None:
    runs = Warehouse(trained_runs.warehouse).runs(matrix_id=trained_runs.matrix_id)
    frame = summary_frame(runs).set_index("strategy")
    assert set(frame.index) == {"head", "pooler_head", "lora"}  # the failed run is not in the summary
    for strategy in frame.index:
        accs = runs[(runs.strategy == strategy) & (runs.status == "success")]["test_acc"]
        assert frame.loc[strategy, "n"] == 2
        assert math.isclose(frame.loc[strategy, "test_acc_mean"], accs.mean())
        assert math.isclose(frame.loc[strategy, "test_acc_std"], accs.std(ddof=1), abs_tol=1e-12)
    assert frame.loc["head", "trainable_params"] < frame.loc["pooler_head", "trainable_params"]


def test_compare_runs_from_the_warehouse(trained_runs: TrainedRuns) -> None:
    run_a, run_b = trained_runs.run_ids[0], trained_runs.run_ids[-1]
    store = Warehouse(trained_runs.warehouse)
    result = compare_runs(store, run_a, run_b)
    assert result.n_shared > 0 and 0 <= result.acc_a <= 1 and 0 <= result.mcnemar_p <= 1
    same = compare_runs(store, run_a, run_a)
    assert same.diff == 0 and same.mcnemar_p == 1.0 and not same.significant


def test_run_chance_test_from_the_warehouse(trained_runs: TrainedRuns) -> None:
    store = Warehouse(trained_runs.warehouse)
    runs = store.runs()
    for run in runs.to_dict("records"):
        metrics = store.table("class_metrics", run["run_id"])
        result = run_chance_test(run, metrics)
        if run["status"] != "success":
            assert result is None
            continue
        supports = metrics[metrics["split"] == "test"]["support"]
        assert result.total == supports.sum() == run["num_test"]
        assert result.chance == pytest.approx(supports.max() / supports.sum())
        assert result.correct / result.total == pytest.approx(run["test_acc"])
