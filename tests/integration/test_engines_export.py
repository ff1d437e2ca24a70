"""The exporting engines (ONNX Runtime, OpenVINO) on the tiny preset: exported, checked, cached, reopened.

Each is prepared into an engine cache, answers like fp32 on synthetic clips at any batch size, and a second
`prepare_engine` opens the cached files (no export, no check) and gives the very same outputs. The bench's
measuring code runs end to end on the same model: figures, GEMM rates, a child process per peak RSS.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vjepa_core.inference.engine_bench import ModelSource, bench_engines, flops_per_clip, gemm_rates
from vjepa_core.inference.engines import model_part, prepare_engine
from vjepa_core.inference.engines.check import PROB_TOLERANCE, TOKEN_TOLERANCE, synthetic_clips
from vjepa_core.inference.engines.store import list_entries
from vjepa_core.models import load_model

CPU = torch.device("cpu")
LABELS = ["up", "down", "left", "right", "wave", "still"]
FILES = {"ort-fp32": "model.onnx", "ort-int8": "model.int8.onnx", "openvino-fp32": "model.xml",
         "openvino-int8": "model.xml"}


@pytest.fixture(scope="module")
def tiny_jepa() -> torch.nn.Module:
    return load_model("tiny-jepa", LABELS)


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    return synthetic_clips(16, 64, count=6, seed=5)


@pytest.mark.parametrize("engine", list(FILES))
def test_an_exported_engine_answers_like_fp32_and_reopens_from_the_cache(
        engine: str, tiny_jepa: torch.nn.Module, clips: torch.Tensor, tmp_path: Path) -> None:
    def prepare(part: str) -> object:
        return prepare_engine(tiny_jepa, part=part, engine=engine, device=CPU, frames=16, crop=64,
                              cache_root=tmp_path, model_name="tiny-jepa")

    first = prepare("classifier")
    assert first.engine == engine and not first.cached and first.check.passed and first.fallback is None
    with torch.no_grad():
        reference = torch.softmax(tiny_jepa(pixel_values_videos=clips).logits, -1)
    probs = torch.softmax(first(clips), -1)
    assert probs.shape == (6, 6)
    assert float((probs - reference).abs().max()) <= PROB_TOLERANCE
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    for size in (1, 3):  # the batch axis was exported dynamic
        assert torch.allclose(first(clips[:size]), first(clips)[:size], atol=1e-4)
    again = prepare("classifier")
    assert again.cached and again.check == first.check and torch.equal(again(clips), first(clips))
    [row] = list_entries(tmp_path)
    assert row["status"] == "ok" and row["engine"] == engine and row["model"] == "tiny-jepa"
    assert (tmp_path / row["key"] / FILES[engine]).is_file() and row["bytes"] > 100_000

    encoder = prepare("encoder")
    with torch.no_grad():
        tokens = tiny_jepa.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
    error = torch.linalg.vector_norm(encoder(clips) - tokens) / torch.linalg.vector_norm(tokens)
    assert encoder.check.passed and float(error) <= TOKEN_TOLERANCE and len(list_entries(tmp_path)) == 2


def test_the_bench_measures_every_engine_in_one_run() -> None:
    bench = bench_engines(ModelSource(model="tiny-jepa"), engines=["fp32", "torch-int8"], batches=(1, 2), rounds=2)
    assert [(f.engine, f.batch) for f in bench.engines] == [("fp32", 1), ("torch-int8", 1), ("fp32", 2),
                                                            ("torch-int8", 2)]
    fp32, int8 = bench.engines[2], bench.engines[3]
    assert fp32.speedup == 1.0 and fp32.max_prob_diff == 0.0 and fp32.top1_agreement == 1.0
    assert 0 < int8.max_prob_diff <= PROB_TOLERANCE and int8.setup_s > 0 and not int8.cacheable
    assert int8.speedup == pytest.approx(fp32.ms_per_clip / int8.ms_per_clip, rel=1e-6)
    assert all(f.peak_rss_mb > 200 for f in bench.engines)  # a process with torch and the model loaded
    assert bench.flops_per_clip == flops_per_clip(model_part(load_model("tiny-jepa", LABELS), "classifier"),
                                                  synthetic_clips(16, 64, count=1))
    assert fp32.effective_gflops == pytest.approx(bench.flops_per_clip / fp32.ms_per_clip / 1e6)
    assert bench.gemm_gflops_fp32 > 1 and bench.gemm_gops_int8 > 1 and bench.threads == torch.get_num_threads()
    assert set(bench.load_average) == {"before", "after"}
    assert {"engine", "ms_per_clip", "speedup", "max_prob_diff", "top1_agreement", "peak_rss_mb", "setup_s",
            "effective_gflops"} <= set(bench.as_dict()["engines"][0])


def test_flops_count_the_attention_and_gemm_rates_are_measured() -> None:
    model = load_model("tiny", LABELS)
    config = model.config
    tokens, width = 128, config.hidden_size  # 8 tubelets x 4 x 4 patches
    encoder = config.num_hidden_layers * (2 * tokens * 12 * width * width + 4 * tokens * tokens * width)
    patches = 2 * tokens * width * 3 * config.tubelet_size * config.patch_size ** 2
    pooler_self = config.num_pooler_layers * (2 * tokens * 12 * width * width + 4 * tokens * tokens * width)
    # keys and values of every token, the one query, the MLP on it, and the one-query attention
    pooler_cross = 2 * (2 * tokens * width * width) + 2 * width * width + 16 * width * width + 4 * tokens * width
    classifier = 2 * width * len(LABELS)
    expected = encoder + patches + pooler_self + pooler_cross + classifier
    assert flops_per_clip(model_part(model, "classifier"), synthetic_clips(16, 64, count=1)) == expected
    fp32, int8, kernel = gemm_rates((256, 256, 256), seconds=0.2)
    assert fp32 > 0.5 and int8 > 0.5 and kernel in ("onnxruntime MatMulInteger", "fbgemm quantized linear")
