"""`benchmarks.engine_agreement` on a trained checkpoint: engines and yardsticks against fp32, per video."""

from __future__ import annotations

import json

import pytest

from benchmarks.engine_agreement import FLOORS, main, run_videos
from tests.support import TrainedRuns
from vjepa_core.store.checkpoint import load_checkpoint


def test_the_benchmark_measures_fp32_against_itself_and_its_floor(trained_runs: TrainedRuns,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run_id = next(run for run in trained_runs.run_ids
                  if load_checkpoint(trained_runs.results / "checkpoints" / run).manifest["strategy"] == "lora")
    checkpoint = trained_runs.results / "checkpoints" / run_id
    assert main([str(checkpoint), "--warehouse", str(trained_runs.warehouse), "--engines", "fp32", "--floor",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["engine"]: row for row in result["engines"][1:]}
    assert result["run_id"] == run_id and set(rows) == {"fp32", *FLOORS}
    for split in ("val", "test"):
        videos = len(run_videos(trained_runs.warehouse, run_id, split))
        assert videos > 0
        fp32 = rows["fp32"][split]  # the same model on the same views: the same answers
        assert (fp32["videos"], fp32["top1_agreement"], fp32["videos_over_tolerance"]) == (videos, 1.0, 0)
        assert fp32["max_prob_diff"] < 1e-6
        for name in FLOORS:  # changed pixels move a trained model's answers, if only a little
            floor = rows[name][split]
            assert rows[name]["ran"] == "fp32" and floor["videos"] == videos
            assert 0 < floor["p99_prob_diff"] <= floor["max_prob_diff"] < 1
            assert 0 <= floor["top1_agreement"] <= 1
