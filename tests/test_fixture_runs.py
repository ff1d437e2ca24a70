"""The shared `trained_runs` fixture really holds what the runner wrote."""

from __future__ import annotations

from conftest import TRAINED_SEEDS, TRAINED_STRATEGIES, TrainedRuns

from vjepa_core.warehouse import Warehouse


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
