"""Inference engines on tiny models: names, `auto`, the fp32 reference, the check against it, the fallback,
and the on-disk store of prepared engines (keys, verdicts, bounds, listing, clearing).

The exporting engines (ONNX Runtime, OpenVINO) take tens of seconds each to export and are tested in
tests/integration/test_engines_export.py; here `torch-int8` stands for an engine that is checked and cached.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vjepa_core.errors import UserError
from vjepa_core.inference.engines import (
    AUTO_CPU,
    ENGINES,
    EngineUnfit,
    Probes,
    candidates,
    engine_names,
    model_part,
    prepare_engine,
    resolve_engine,
)
from vjepa_core.inference.engines.base import Engine, Runner, in_encoder
from vjepa_core.inference.engines.check import PROB_TOLERANCE, agreement, probe_clips, synthetic_clips
from vjepa_core.inference.engines.store import clear, engine_key, list_entries, read_entry, trim
from vjepa_core.models import load_model

CPU = torch.device("cpu")
LABELS = ["up", "down", "left", "right", "wave", "still"]


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return load_model("tiny", LABELS)


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    return synthetic_clips(16, 64, count=6, seed=3)


def prepare(model: torch.nn.Module, engine: str, root: Path | None, **kwargs: object) -> object:
    return prepare_engine(model, part=kwargs.pop("part", "classifier"), engine=engine, device=CPU, frames=16,
                          crop=64, cache_root=root, **kwargs)


def test_engine_names_and_what_auto_means_on_each_device() -> None:
    assert engine_names()[0] == "auto"
    assert {"fp32", "bf16", "torch-int8", "ort-fp32", "ort-int8", "openvino-fp32", "openvino-int8"} <= set(ENGINES)
    assert resolve_engine("auto", CPU) == AUTO_CPU[0] and candidates("auto", CPU) == AUTO_CPU
    assert AUTO_CPU == ("openvino-int8", "ort-int8")  # the fastest measured on a ViT-L-shaped model, then the next
    assert resolve_engine("auto", torch.device("cuda"), "fp16") == "fp16"  # the run's autocast, as today
    assert resolve_engine("auto", torch.device("mps")) == "fp16"
    assert resolve_engine("ort-int8", CPU) == "ort-int8"
    with pytest.raises(UserError, match="unknown 'int4'.*auto, fp32"):
        resolve_engine("int4", CPU)


def test_fp32_is_the_model_itself(tiny: torch.nn.Module, clips: torch.Tensor) -> None:
    with torch.no_grad():
        logits = tiny(pixel_values_videos=clips).logits
        tokens = tiny.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
    classifier = prepare(tiny, "fp32", None)
    encoder = prepare(tiny, "fp32", None, part="encoder")
    assert classifier.engine == "fp32" and classifier.needs_model and classifier.fallback is None
    assert torch.equal(classifier(clips), logits)
    assert torch.equal(encoder(clips), tokens) and tokens.shape == (6, 128, 128)


def test_the_encoder_part_keeps_the_feature_layers() -> None:
    model = load_model("tiny", LABELS, feature_layers=(0, 1))
    clips = synthetic_clips(16, 64, count=2)
    with torch.no_grad():
        tokens = model.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
    assert tokens.shape == (2, 256, 128)  # two blocks' tokens, concatenated
    assert torch.equal(model_part(model, "encoder")(clips), tokens)


def test_a_checked_engine_is_close_to_fp32_and_its_verdict_is_cached(tiny: torch.nn.Module, clips: torch.Tensor,
                                                                       tmp_path: Path) -> None:
    first = prepare(tiny, "torch-int8", tmp_path)
    assert first.engine == "torch-int8" and not first.cached and first.fallback is None and not first.needs_model
    assert first.check.passed and first.check.max_prob_diff <= PROB_TOLERANCE and first.check.probes == 4
    reference = torch.softmax(prepare(tiny, "fp32", None)(clips), -1)
    probs = torch.softmax(first(clips), -1)
    assert float((probs - reference).abs().max()) <= PROB_TOLERANCE
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    [row] = list_entries(tmp_path)
    assert row["engine"] == "torch-int8" and row["status"] == "ok" and row["check"]["passed"]
    probes = Probes(model_part(tiny, "classifier"), 16, 64)
    again = prepare(tiny, "torch-int8", tmp_path, probes=probes)
    assert again.cached and again.check == first.check
    assert "reference" not in vars(probes)  # the verdict came from the cache: fp32 did not run again


def test_the_key_follows_every_weight_and_what_shapes_the_output(tiny: torch.nn.Module) -> None:
    def key(module: torch.nn.Module, **changes: object) -> str:
        args = {"engine": "ort-int8", "part": "classifier", "module": module, "feature_layers": (), "frames": 16,
                "crop": 64, **changes}
        return engine_key(**args)

    part = model_part(tiny, "classifier")
    base = key(part)
    assert key(model_part(load_model("tiny", LABELS), "classifier")) == base  # the same weights
    assert {key(part, engine="ort-fp32"), key(part, part="encoder"), key(part, frames=8), key(part, crop=32),
            key(part, feature_layers=(0, 1))}.isdisjoint({base})
    changed = load_model("tiny", LABELS)
    weight = changed.vjepa2.encoder.layer[0].mlp.fc1.weight  # 65536 values: one off the sampling stride
    with torch.no_grad():
        weight.view(-1)[12345] += 1e-3
    assert key(model_part(changed, "classifier")) != base
    assert key(model_part(changed, "encoder")) != key(model_part(tiny, "encoder"))
    with torch.no_grad():  # the predictor never runs at inference: it is not part of the key
        changed.vjepa2.predictor.embeddings.mask_tokens.add_(1.0)
        weight.view(-1)[12345] -= 1e-3
    assert key(model_part(changed, "classifier")) == base


@dataclass(frozen=True)
class CountingEngine(Engine):
    """A real engine whose answers are the model's plus `noise` on the logits; it counts its builds."""

    noise: float = 0.0
    builds: list = None  # type: ignore[assignment]

    def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
        self.builds.append(1)
        return lambda pixels: part(pixels).detach() + self.noise * torch.arange(part.model.num_labels)


def test_an_engine_off_fp32_is_rejected_once_and_fp32_answers(tiny: torch.nn.Module, clips: torch.Tensor,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    noisy = CountingEngine("test-noisy", "logits shifted by 1 per class index", noise=1.0, builds=[])
    monkeypatch.setitem(ENGINES, noisy.name, noisy)
    with caplog.at_level(logging.WARNING):
        prepared = prepare(tiny, "test-noisy", tmp_path)
    assert prepared.engine == "fp32" and prepared.requested == "test-noisy"
    assert "answers differ from fp32's: max |prob diff|" in prepared.fallback
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.getMessage().startswith("engine test-noisy cannot run this model (answers differ")
    assert warning.getMessage().endswith("): using fp32") and "\n" not in warning.getMessage()
    assert torch.equal(prepared(clips), prepare(tiny, "fp32", None)(clips))
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and not row["check"]["passed"]
    again = prepare(tiny, "test-noisy", tmp_path)
    assert again.engine == "fp32" and noisy.builds == [1]  # the verdict was read, the engine not built again


def test_a_bench_times_a_rejected_engine_but_auto_still_passes_it_over(tiny: torch.nn.Module, clips: torch.Tensor,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`keep_rejected` (what `runner bench --inference` passes): a named engine runs with the check's reason."""
    noisy = CountingEngine("test-noisy", "logits shifted by 1 per class index", noise=1.0, builds=[])
    monkeypatch.setitem(ENGINES, noisy.name, noisy)
    timed = prepare(tiny, "test-noisy", tmp_path, keep_rejected=True)
    built = len(noisy.builds)
    assert timed.engine == "test-noisy" and timed.fallback is None and not timed.check.passed
    assert timed.rejected.startswith("answers differ from fp32's: max |prob diff|")
    fp32 = prepare(tiny, "fp32", None)(clips)
    assert torch.allclose(timed(clips), fp32 + torch.arange(len(LABELS)), atol=1e-5)
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and read_entry(tmp_path, row["key"])["files_kept"]
    auto = prepare(tiny, "auto", tmp_path, among=("test-noisy",), keep_rejected=True)
    assert auto.engine == "fp32" and auto.rejected is None and auto.fallback == f"test-noisy: {timed.rejected}"
    answers = prepare(tiny, "test-noisy", tmp_path)  # without it, the same verdict means fp32
    assert answers.engine == "fp32" and answers.fallback == timed.rejected
    assert len(noisy.builds) == built  # the verdict was read: nothing built again
    assert torch.equal(answers(clips), fp32)


def test_an_engine_within_tolerance_is_used(tiny: torch.nn.Module, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    close = CountingEngine("test-close", "logits shifted by 1e-4 per class index", noise=1e-4, builds=[])
    monkeypatch.setitem(ENGINES, close.name, close)
    prepared = prepare(tiny, "test-close", tmp_path)
    assert prepared.engine == "test-close" and prepared.check.passed and 0 < prepared.check.max_prob_diff < 1e-3


def test_auto_among_a_callers_engines_takes_the_first_that_keeps_the_answers(tiny: torch.nn.Module, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`among` (what `runner release --space` passes): the candidates passed over are kept with their reasons."""
    noisy = CountingEngine("test-noisy", "logits shifted by 1 per class index", noise=1.0, builds=[])
    close = CountingEngine("test-close", "logits shifted by 1e-4 per class index", noise=1e-4, builds=[])
    for engine in (noisy, close):
        monkeypatch.setitem(ENGINES, engine.name, engine)
    prepared = prepare(tiny, "auto", tmp_path, among=("test-noisy", "test-close"))
    assert prepared.engine == "test-close" and prepared.fallback is None and prepared.check.passed
    [reason] = prepared.passed_over
    assert reason.startswith("test-noisy: answers differ from fp32's: max |prob diff|")
    none = prepare(tiny, "auto", tmp_path, among=("test-noisy",))
    assert none.engine == "fp32" and none.fallback == reason and none.passed_over == ()
    assert prepare(tiny, "fp32", tmp_path, among=("test-close",)).engine == "fp32"  # a named engine ignores it


def test_an_engine_that_cannot_run_here_falls_back(tiny: torch.nn.Module, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    absent = CountingEngine("test-absent", "needs a package", requires=("no_such_package_vjepa",), builds=[])
    monkeypatch.setitem(ENGINES, absent.name, absent)
    with caplog.at_level(logging.WARNING):
        missing = prepare(tiny, "test-absent", tmp_path)
    assert missing.engine == "fp32" and "pip install no_such_package_vjepa" in missing.fallback
    assert absent.builds == [] and list_entries(tmp_path) == []
    on_gpu = prepare_engine(tiny, part="classifier", engine="torch-int8", device=torch.device("cuda"), frames=16,
                            crop=64, cache_root=tmp_path)
    assert on_gpu.engine == "fp32" and "CPU only" in on_gpu.fallback
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2  # one line each


def test_an_engine_that_fails_to_build_falls_back(tiny: torch.nn.Module, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Broken(Engine):
        def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
            raise EngineUnfit("cannot export to ONNX (UnsupportedOp: aten::frobnicate)")

    monkeypatch.setitem(ENGINES, "test-broken", Broken("test-broken", "always fails"))
    prepared = prepare(tiny, "test-broken", tmp_path)
    assert prepared.engine == "fp32" and prepared.fallback == "cannot export to ONNX (UnsupportedOp: aten::frobnicate)"
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and row["reason"] == prepared.fallback


def test_agreement_measures_probabilities_and_tokens() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.1, 0.0]])
    same = agreement("classifier", logits, logits.clone())
    assert same.passed and same.max_prob_diff == 0.0 and same.top1_agreement == 1.0
    flipped = agreement("classifier", logits, logits + torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]))
    assert not flipped.passed and flipped.top1_agreement == 0.5 and flipped.max_prob_diff > PROB_TOLERANCE
    assert not agreement("classifier", logits, logits * float("nan")).passed
    tokens = torch.randn(2, 8, 4)
    small = agreement("encoder", tokens, tokens * 1.01)
    assert small.passed and small.token_error == pytest.approx(0.01, rel=1e-3) and small.min_cosine > 0.9999
    assert not agreement("encoder", tokens, tokens * 1.2).passed


def test_probe_clips_are_preprocessed_video_of_the_model_shape() -> None:
    clips = probe_clips(8, 64)
    assert clips.shape == (4, 8, 3, 64, 64) and clips.dtype == torch.float32
    assert torch.isfinite(clips).all() and torch.equal(clips, probe_clips(8, 64))
    assert -2.5 < float(clips.min()) < -0.5 and 0.5 < float(clips.max()) < 2.7  # ImageNet-normalised pixels
    assert float((clips[:, 1:] - clips[:, :-1]).abs().mean()) > 0.01  # frames move


def make_entry(root: Path, key: str, size: int, used: float) -> None:
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * size)
    (folder / "engine.json").write_text(f'{{"key": "{key}", "engine": "ort-int8", "status": "ok"}}')
    os.utime(folder / "engine.json", (used, used))


def test_the_store_is_bounded_listable_and_clearable(tmp_path: Path) -> None:
    now = time.time()
    for index, key in enumerate(["old", "mid", "new"]):
        make_entry(tmp_path, key, 1000, now - 3600 * (3 - index))
    (tmp_path / ".new.tmp.host.1.abc").mkdir()  # a writer's staged folder: not an entry
    assert [row["key"] for row in list_entries(tmp_path)] == ["new", "mid", "old"]
    assert read_entry(tmp_path, "mid")["engine"] == "ort-int8" and read_entry(tmp_path, "absent") is None
    assert trim(tmp_path, 2500, keep="old") == ["mid"]  # least recently used first, never the one kept
    assert {row["key"] for row in list_entries(tmp_path)} == {"new", "old"}
    assert clear(tmp_path, older_than_seconds=2 * 3600) == (1, 1000 + len(
        '{"key": "old", "engine": "ort-int8", "status": "ok"}'))
    assert [row["key"] for row in list_entries(tmp_path)] == ["new"]
    assert clear(tmp_path)[0] == 1 and list_entries(tmp_path) == []


def test_int8_engines_tell_the_encoder_from_the_head_by_node_name() -> None:
    assert in_encoder("/model/vjepa2/encoder/layer.3/mlp/fc1/MatMul")  # ONNX, traced
    assert in_encoder("__module.model.vjepa2.encoder.layer.3.mlp.fc1/aten::linear/MatMul")  # OpenVINO
    assert not in_encoder("/model/pooler/cross_attention_layer/mlp/fc1/MatMul")
    assert not in_encoder("__module.model.classifier/aten::linear/MatMul")
    assert not in_encoder("/model/vjepa2/encoder_norm/MatMul") and not in_encoder("node_MatMul_12")
