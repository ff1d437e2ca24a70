"""The default engine keeps the answers of trained checkpoints of every strategy of the default study.

Checkpoints: head, pooler_head and lora from the session's `trained_runs` (tiny preset, seed 0), plus
pooler_head_lora and full trained here the same way. For each, `Predictor` under `--engine auto` (what
`runner predict` and the demo run by default) against `--engine fp32` on the same decoded views of every
video of `synthetic_small`: probabilities within `PROB_TOLERANCE`, and top-1 equal on every video but near
ties (a flip needs fp32's best two labels within twice the probability difference), and `auto` must have run an
int8 engine (`AUTO_CPU`), not fp32 after a fallback. `torch-int8` runs the LoRA checkpoints, their LoRA factors
left in fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support import TrainedRuns
from vjepa_core.data import discover_dataset, eval_clip_indices, eval_views, probe_video, read_frames
from vjepa_core.inference.engines.check import PROB_TOLERANCE
from vjepa_core.inference.engines.eager import quantizable_linears
from vjepa_core.inference.predict import Predictor
from vjepa_core.paths import checkpoint_results, engines_dir
from vjepa_core.store.checkpoint import load_checkpoint

STRATEGIES = ("head", "pooler_head", "lora", "pooler_head_lora", "full")


@pytest.fixture(scope="module")
def checkpoints(trained_runs: TrainedRuns, synthetic_small: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Path]:
    from runner.orchestration.execute import execute_one
    from vjepa_core.spec import ExecOptions, RunSpec

    found = {}
    for run_id in trained_runs.run_ids:
        manifest = load_checkpoint(trained_runs.results / "checkpoints" / run_id).manifest
        if manifest["spec"]["seed"] == 0:
            found[manifest["strategy"]] = trained_runs.results / "checkpoints" / run_id
    root = tmp_path_factory.mktemp("more-strategies")
    for strategy in ("pooler_head_lora", "full"):
        spec = RunSpec(strategy=strategy, data=str(synthetic_small), model="tiny", epochs=2, seed=0, batch_size=4,
                       train_views=2)
        run = execute_one(spec, root / "results", root / "vjepa.duckdb", ExecOptions(progress=False))
        assert run["status"] == "success", run.get("error")
        found[strategy] = root / "results" / "checkpoints" / run["run_id"]
    return found


@pytest.fixture(scope="module")
def views(synthetic_small: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Every video's evaluation views [V, 16, 3, 64, 64] (as the fixture runs are scored) and each view's video."""
    stacked, owner = [], []
    for index, item in enumerate(discover_dataset(str(synthetic_small)).items):
        info = probe_video(item.path)
        for indices in eval_clip_indices(info.num_frames, 16, 2, 1):
            for view in eval_views(read_frames(item.path, indices), 64):
                stacked.append(view)
                owner.append(index)
    return torch.stack(stacked), np.array(owner)


def per_video(predictor: Predictor, views: tuple[torch.Tensor, np.ndarray]) -> np.ndarray:
    clips, owner = views
    probs = np.concatenate([predictor.probabilities(clips[i:i + 8]) for i in range(0, len(clips), 8)])
    return np.stack([probs[owner == video].mean(0) for video in range(owner.max() + 1)])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_default_engine_keeps_top1_and_probabilities(strategy: str, checkpoints: dict[str, Path],
                                                         views: tuple[torch.Tensor, np.ndarray]) -> None:
    loaded = load_checkpoint(checkpoints[strategy])
    reference = per_video(Predictor(loaded, device="cpu", engine="fp32"), views)
    # The engine cache the demo and runner predict use for this checkpoint: they find it prepared.
    default = Predictor(loaded, device="cpu", engine="auto",
                        engine_cache=engines_dir(checkpoint_results(checkpoints[strategy])))
    probs = per_video(default, views)
    # An engine ran, not fp32 after a fallback: else this would compare fp32 with itself.
    assert default.engine.engine not in ("fp32", "auto"), default.engine.fallback
    assert probs.shape == reference.shape == (24, 6)
    diff = float(np.abs(probs - reference).max())
    assert diff <= PROB_TOLERANCE, default.engine.engine
    # A top-1 can only flip where fp32's best two labels are within 2 x diff of each other (2-epoch tiny models
    # have near ties); everywhere else it must hold, and near ties may flip on at most one video of 24.
    top2 = np.sort(reference, axis=1)[:, -2:]
    flipped = probs.argmax(1) != reference.argmax(1)
    assert not (flipped & (top2[:, 1] - top2[:, 0] > 2 * diff)).any(), default.engine.engine
    assert flipped.sum() <= 1, default.engine.engine


@pytest.mark.parametrize("strategy", ["lora", "pooler_head_lora"])
def test_torch_int8_quantizes_a_lora_model_around_its_factors(strategy: str, checkpoints: dict[str, Path],
                                                              views: tuple[torch.Tensor, np.ndarray]) -> None:
    """PEFT's LoRA layer reads its factors' `.weight` as tensors (a quantized Linear's is a method): the factors
    stay fp32, their base layers are int8, and the engine runs (it raised AttributeError on every LoRA model)."""
    loaded = load_checkpoint(checkpoints[strategy])
    names = quantizable_linears(loaded.model)
    assert any(name.endswith("q_proj.base_layer") for name in names)
    assert not any("lora_A" in name or "lora_B" in name for name in names)
    reference = per_video(Predictor(loaded, device="cpu", engine="fp32"), views)
    quantized = Predictor(loaded, device="cpu", engine="torch-int8")
    assert quantized.engine.engine == "torch-int8", quantized.engine.fallback
    assert float(np.abs(per_video(quantized, views) - reference).max()) <= PROB_TOLERANCE
