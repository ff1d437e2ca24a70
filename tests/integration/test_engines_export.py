"""Each engine on a trained checkpoint: prepared, checked, cached, reopened; and `runner bench --inference`.

The checkpoint is the session's trained `pooler_head` (tiny preset, seed 0), its engines prepared into the
engine cache of its results folder (where `runner predict` and the demo find them). An engine that keeps
fp32's answers on the probe clips runs and answers like fp32 on other clips at any batch size, and a second
`prepare_engine` opens the cached files (no export, no check) with the very same outputs; one that does not
falls back to fp32 with its reason. A `Predictor` given the warehouse checks its engine on the run's own
validation views, and `runner cache ls --engines` shows the verdict and its evidence. The bench runs end to
end through the CLI on the tiny preset.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from runner.bench.engines import MATMUL_FLAGS, ModelSource, child_peak_rss, flops_per_clip, gemm_rates
from runner.cli import app
from tests.support import TrainedRuns
from vjepa_core.inference.engines.base import in_encoder
from vjepa_core.inference.engines.check import PROB_TOLERANCE, probe_evidence, synthetic_clips
from vjepa_core.inference.engines.parts import model_part
from vjepa_core.inference.engines.prepare import prepare_engine
from vjepa_core.inference.engines.rope import ROPE_SWAP
from vjepa_core.inference.engines.store import engine_key, list_entries
from vjepa_core.inference.predict import Predictor
from vjepa_core.inference.views import validation_videos
from vjepa_core.models import feature_layers, load_model
from vjepa_core.paths import checkpoint_results, engines_dir
from vjepa_core.store.checkpoint import load_checkpoint

CPU = torch.device("cpu")
LABELS = ["up", "down", "left", "right", "wave", "still"]
FILES = {"ort-int8": "model.int8.onnx", "openvino-int8": "model.xml"}
# OpenVINO's runtime stays in a process once loaded (its own thread pool): later tests that fork DataLoader
# workers (runner pretrain) then crash that process. Its engine is tested in a spawned process of its own.
OWN_PROCESS = {"openvino-int8"}


@pytest.fixture(scope="module")
def checkpoint(trained_runs: TrainedRuns) -> Path:
    return trained_runs.results / "checkpoints" / trained_runs.run_ids[2]  # pooler_head, seed 0


@pytest.mark.parametrize("engine", list(FILES))
def test_an_engine_answers_like_fp32_on_a_trained_checkpoint_and_reopens_from_the_cache(
        engine: str, checkpoint: Path) -> None:
    if engine in OWN_PROCESS:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(check_engine, (engine, checkpoint, torch.get_num_threads()))
    else:
        check_engine(engine, checkpoint)


def check_engine(engine: str, checkpoint: Path, threads: int | None = None) -> None:
    """The test's checks, in this process or (`threads` given) in a spawned one, where an assertion error is
    raised again in the test by `Pool.apply`."""
    if threads is not None:
        torch.set_num_threads(threads)
    clips = synthetic_clips(16, 64, count=6, seed=5)
    model = load_checkpoint(checkpoint).model.eval()
    root = engines_dir(checkpoint_results(checkpoint))

    def prepare() -> object:
        return prepare_engine(model, part="classifier", engine=engine, device=CPU, frames=16, crop=64,
                              cache_root=root, model_name="pooler_head")

    first = prepare()
    key = engine_key(engine=engine, part="classifier", module=model_part(model, "classifier"),
                     feature_layers=feature_layers(model), frames=16, crop=64,
                     evidence=probe_evidence(16, 64).identity)
    [row] = [row for row in list_entries(root) if row["key"] == key]
    if first.fallback is not None:  # rejected: fp32 runs, and the entry keeps only the reason
        assert first.engine == "fp32" and row["status"] == "rejected" and "answers differ" in row["reason"]
        return
    assert first.engine == engine and first.key == key and first.check.passed and row["status"] == "ok"
    with torch.no_grad():
        reference = torch.softmax(model(pixel_values_videos=clips).logits, -1)
    probs = torch.softmax(first(clips), -1)
    assert probs.shape == (6, 6)
    assert float((probs - reference).abs().max()) <= PROB_TOLERANCE
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    for size in (1, 3):  # the batch axis was exported dynamic; a clip's answer does not depend on its batch
        assert torch.allclose(first(clips[:size]), first(clips)[:size], atol=1e-4)
    again = prepare()
    assert again.cached and again.check == first.check and torch.equal(again(clips), first(clips))
    assert (root / row["key"] / FILES[engine]).is_file() and row["bytes"] > 100_000
    if engine == "ort-int8":
        assert_int8_encoder_only(root / row["key"] / FILES[engine])
    if engine == "openvino-int8":
        assert_openvino_head_fp32(root / row["key"] / FILES[engine])


def assert_int8_encoder_only(graph: Path) -> None:
    """The encoder's weight matmuls are 8-bit `MatMulNBits`; the head's (pooler, classifier) stay fp32 MatMuls."""
    import onnx

    nodes = onnx.load(str(graph)).graph.node
    int8 = [node.name for node in nodes if node.op_type == "MatMulNBits"]
    bits = {attribute.i for node in nodes if node.op_type == "MatMulNBits" for attribute in node.attribute
            if attribute.name == "bits"}
    head = [node.name for node in nodes if node.op_type in ("MatMul", "Gemm") and "/pooler/" in node.name]
    assert len(int8) >= 4 * 2 and all("/encoder/" in name for name in int8) and bits == {8}
    swaps = [node.name for node in nodes if node.op_type == "MatMul" and ROPE_SWAP in node.name]
    assert len(swaps) == 2 * 2 and not any(ROPE_SWAP in name for name in int8)  # the rotary swaps stay fp32
    assert any("/self_attn/q_proj/" in name for name in head) and any("/mlp/fc1/" in name for name in head)


def assert_openvino_head_fp32(xml: Path) -> None:
    """The head's matmuls and the rotary swaps read fp32 weight constants; the encoder's others read int8 weights
    through a conversion; the file asks the plugin for activation groups of 32 (tiny: 128 wide)."""
    import openvino as ov

    from vjepa_core.inference.engines.openvino import GROUP_OPTION

    weights = {}  # matmul name -> what its weight input is
    model = ov.Core().read_model(str(xml))
    for op in model.get_ops():
        if op.get_type_name() == "MatMul":
            source = op.input_value(1).get_node()
            dtype = source.get_output_element_type(0).get_type_name()
            weights[op.get_friendly_name()] = (source.get_type_name(), dtype)
    head = {name: kind for name, kind in weights.items() if not in_encoder(name) or ROPE_SWAP in name}
    encoder = {name: kind for name, kind in weights.items() if in_encoder(name) and ROPE_SWAP not in name}
    assert head and all(kind == ("Constant", "f32") for kind in head.values()), head
    assert sum(ROPE_SWAP in name for name in head) == 2 * 2  # queries' and keys', in each of tiny's two blocks
    assert encoder and all(kind[0] != "Constant" for kind in encoder.values()), encoder
    assert model.get_rt_info(GROUP_OPTION).astype(int) == 32


class DataDependent(torch.nn.Module):
    """A branch on a tensor's value: `torch.export` cannot capture it, tracing follows the example's path."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encoder(x)
        return y * 2 if y.mean() > -1e9 else y


def test_openvino_converts_through_torch_export_with_ops_named_by_module_and_traces_what_it_cannot_capture(
        ) -> None:
    import openvino as ov

    from vjepa_core.inference.engines.openvino import compress, convert

    def outputs(model: object, x: torch.Tensor) -> torch.Tensor:
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # not bf16 where it can
        return torch.from_numpy(compiled(x.numpy())[0])

    part = model_part(load_model("tiny", LABELS).eval(), "classifier")
    exported = convert(part, torch.zeros(2, 16, 3, 64, 64), int8=False)
    matmuls = [op.get_friendly_name() for op in exported.get_ops() if op.get_type_name() == "MatMul"]
    weights = [name for name in matmuls if ROPE_SWAP not in name]
    assert all("/aten.linear.default/" in name for name in weights)  # torch.export's nodes, after their modules
    assert len(matmuls) - len(weights) == 2 * 2  # queries' and keys' rotary swaps, in each of tiny's two blocks
    compressed = compress(exported)
    assert not any(op.get_type_name() == "MatMul" and ROPE_SWAP in op.get_friendly_name()
                   and op.input_value(1).get_node().get_type_name() == "Convert" for op in compressed.get_ops())
    assert {in_encoder(name) for name in matmuls} == {True, False}  # the encoder's and the head's told apart
    clips = synthetic_clips(16, 64, count=3, seed=2)
    with torch.no_grad():
        reference = part(clips)
    for batch in (1, 3):  # the batch axis is dynamic
        assert torch.allclose(outputs(exported, clips[:batch]), reference[:batch], atol=1e-4)

    module, x = DataDependent().eval(), torch.randn(3, 8)
    traced = convert(module, x[:2], int8=False)
    assert any("aten::linear" in op.get_friendly_name() for op in traced.get_ops())  # named by TorchScript
    with torch.no_grad():
        assert torch.allclose(outputs(traced, x), module(x), atol=1e-5)


def test_runner_bench_inference_measures_engines_side_by_side() -> None:
    result = CliRunner().invoke(app, ["bench", "--inference", "--model", "tiny", "--engines", "fp32,ort-int8",
                                      "--batches", "1", "--rounds", "1", "--clips", "2", "--no-peak-rss", "--json",
                                      "-q"])
    assert result.exit_code == 0, result.output
    bench = json.loads(result.stdout)
    assert [(f["requested"], f["batch"]) for f in bench["engines"]] == [("fp32", 1), ("ort-int8", 1)]
    fp32, int8 = bench["engines"]
    assert fp32["speedup"] == 1.0 and fp32["max_prob_diff"] == 0.0 and fp32["top1_agreement"] == 1.0
    assert fp32["check"] is None and fp32["blocks"] is None  # the reference is not checked
    assert 0 < int8["max_prob_diff"] < 0.1 and int8["setup_s"] > 0 and int8["cacheable"] and not int8["rejected"]
    assert int8["check"]["kind"] == "probes" and int8["check"]["passed"] and int8["blocks"] == 2
    assert int8["speedup"] == pytest.approx(fp32["ms_per_clip"] / int8["ms_per_clip"], rel=1e-6)
    assert all(f["peak_rss_mb"] is None for f in bench["engines"])  # --no-peak-rss: measured below, once
    assert bench["flops_per_clip"] == flops_per_clip(model_part(load_model("tiny", LABELS), "classifier"),
                                                     synthetic_clips(16, 64, count=1))
    assert fp32["effective_gflops"] == pytest.approx(bench["flops_per_clip"] / fp32["ms_per_clip"] / 1e6)
    assert bench["gemm_gflops_fp32"] > 0.5 and bench["gemm_gops_int8"] > 0.5 and set(bench["load_average"]) == {
        "before", "after"}
    assert {"engine", "ms_per_clip", "speedup", "max_prob_diff", "top1_agreement", "peak_rss_mb", "setup_s",
            "effective_gflops"} <= set(fp32)
    flags = {flag for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
             for flag in line.split(":", 1)[1].split()}
    present = [flag for flag in MATMUL_FLAGS if flag in flags]  # what the int8 gain depends on
    assert bench["cpu"].endswith(f"({', '.join(present)})" if present else f"(none of {'/'.join(MATMUL_FLAGS)})")


def test_a_checkpoint_s_engine_is_checked_on_its_run_s_validation_views_and_listed_with_why(
        trained_runs: TrainedRuns, tmp_path: Path) -> None:
    checkpoint = trained_runs.results / "checkpoints" / trained_runs.run_ids[0]  # head, seed 0
    videos = validation_videos(trained_runs.warehouse, trained_runs.run_ids[0])
    assert len(videos) == 6  # one per class of synthetic_small
    cache = tmp_path / "engines"  # the engines folder of the results folder tmp_path
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", engine="ort-int8", engine_cache=cache,
                                          warehouse=trained_runs.warehouse)
    check = predictor.engine.check
    assert predictor.engine.engine == "ort-int8" and check.kind == "views" and check.passed
    assert check.clips == 6 and check.evidence == f"6 views of 6 validation videos of run {trained_runs.run_ids[0]}"
    assert check.top1_agreement == 1.0 and check.max_prob_diff <= 0.016 and check.p99_prob_diff <= check.max_prob_diff
    bare = Predictor.from_checkpoint(checkpoint, device="cpu", engine="ort-int8", engine_cache=cache)
    assert bare.engine.check.kind == "probes" and not bare.engine.cached  # other evidence: another entry
    listed = CliRunner().invoke(app, ["cache", "ls", "--engines", "--json", "--results", str(tmp_path)])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {row["evidence"] for row in rows} == {check.evidence, "19 synthetic probe clips"}
    assert all(row["status"] == "ok" and row["plan"]["blocks"] == 2 for row in rows)
    table = CliRunner().invoke(app, ["cache", "ls", "--engines", "--results", str(tmp_path)])
    assert table.exit_code == 0 and table.stdout.count("kept fp32's") == 2  # the why column (cells wrap in lines)


def test_an_engine_s_peak_rss_is_its_own_process_s(tmp_path: Path) -> None:
    # A process with torch and the tiny model loaded, far below this test process (with every fixture in it).
    peak = child_peak_rss(ModelSource(model="tiny"), "fp32", folder=None, frames=16, batch=1)
    assert 200 < peak < 2000


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
