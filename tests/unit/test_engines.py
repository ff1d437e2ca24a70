"""Inference engines on tiny models: the registry (names, `auto` per place, help texts), the fp32 reference, the
check against it on probes and on a run's views, the fallback, mixed precision (which encoder blocks stay fp32),
and the on-disk store of prepared engines (keys, verdicts, listing, clearing).

The exporting engines (ONNX Runtime, OpenVINO) take seconds each to export and are tested in
tests/integration/test_engines_export.py; here engines made for the test (the model's logits plus a known error,
per encoder block for an int8 one) stand for engines that are checked, quantized block by block and cached.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2RopeAttention

from vjepa_core import progress
from vjepa_core.errors import UserError
from vjepa_core.inference.engines import (
    ENGINES,
    SPACE,
    auto_help,
    auto_order,
    engine_help,
    engine_names,
    space_choices,
)
from vjepa_core.inference.engines.base import Engine, EngineUnfit, Int8Engine, Runner, encoder_block, in_encoder
from vjepa_core.inference.engines.check import (
    PROB_TOLERANCE,
    PROBE_LIMIT,
    PROBES,
    VIEW_LIMIT,
    Evidence,
    agreement,
    probe_evidence,
    synthetic_clips,
    view_evidence,
)
from vjepa_core.inference.engines.parts import model_part
from vjepa_core.inference.engines.prepare import candidates, prepare_engine, resolve_engine
from vjepa_core.inference.engines.rope import fixed_rope, rotation_tables, tokens_per_clip
from vjepa_core.inference.engines.store import clear, engine_key, list_entries, read_entry, trim
from vjepa_core.models import load_model
from vjepa_core.release.space_engine import SPACE_FORMATS

DEVICE = torch.device("cpu")
LABELS = ["up", "down", "left", "right", "wave", "still"]


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return load_model("tiny", LABELS)


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    return synthetic_clips(16, 64, count=6, seed=3)


@pytest.fixture(scope="module")
def probes() -> Evidence:
    """The probe evidence, its fp32 outputs computed once for the module (what a bench shares across engines)."""
    return probe_evidence(16, 64)


def prepare(model: torch.nn.Module, engine: str, root: Path | None, **kwargs: Any) -> Any:
    return prepare_engine(model, part=kwargs.pop("part", "classifier"), engine=engine, device=DEVICE, frames=16,
                          crop=64, cache_root=root, **kwargs)


def test_the_registry_names_every_engine_and_what_auto_means_in_each_place() -> None:
    assert engine_names() == ["auto", *ENGINES] and set(ENGINES) == {"fp32", "bf16", "fp16", "ort-int8",
                                                                     "openvino-int8"}
    assert auto_order("cpu") == ("openvino-int8", "ort-int8") == candidates("auto", DEVICE)
    assert auto_order(SPACE) == ("openvino-int8", "ort-int8") == candidates("auto", DEVICE, space=True)
    assert space_choices() == ("auto", "openvino-int8", "ort-int8", "fp32")
    assert set(SPACE_FORMATS) == set(auto_order(SPACE))  # a Space can keep and run every engine it may get
    assert resolve_engine("auto", torch.device("cuda"), "fp16") == "fp16"  # the run's autocast on a GPU
    assert resolve_engine("auto", torch.device("mps")) == "fp16"
    assert resolve_engine("ort-int8", DEVICE) == "ort-int8"
    with pytest.raises(UserError, match="unknown 'int4'.*auto, fp32"):
        resolve_engine("int4", DEVICE)
    with pytest.raises(ValueError, match="no order"):
        auto_order("gpu")
    help_text = engine_help()  # every command's --engine help: each engine with its summary, auto's order
    assert all(f"{name} ({engine.summary})" in help_text for name, engine in ENGINES.items())
    assert "the first of openvino-int8, ort-int8 that keeps fp32's answers" in auto_help()
    assert auto_help(SPACE).startswith("auto: the first of openvino-int8, ort-int8 that keeps")


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


@pytest.mark.parametrize("preset", ["tiny", "tiny-2.1"])
def test_fixed_rotary_tables_give_the_model_s_own_answers_bit_for_bit_and_leave_it_as_it_was(preset: str) -> None:
    model = load_model(preset, LABELS)
    part = model_part(model, "classifier")
    crop, frames = model.config.crop_size, model.config.frames_per_clip
    clips = synthetic_clips(frames, crop, count=2, seed=5)
    attention = [module for module in part.modules() if isinstance(module, VJEPA2RopeAttention)]
    with torch.no_grad():
        own = part(clips)
        with fixed_rope(part, clips) as changed:
            fixed = part(clips)
            swaps = [module.rope_swap.matrix for module in attention]
            other = part(synthetic_clips(frames // 2, crop, count=1))  # another clip shape: the module's own
        after = part(clips)
    assert changed == len(attention) >= model.config.num_hidden_layers  # the encoder's (and the predictor's)
    assert torch.equal(fixed, own) and torch.equal(after, own)
    assert other.shape == (1, len(LABELS))
    assert all(torch.equal(swap.sum(0), torch.ones(len(swap))) and torch.equal(swap.sum(1), torch.ones(len(swap)))
               and set(swap.unique().tolist()) == {0.0, 1.0} for swap in swaps)  # permutations: they move values
    assert not any(hasattr(module, "rope_swap") or "apply_rotary_embeddings" in vars(module) for module in attention)
    tokens = model_part(model, "encoder")(clips).shape[1]
    assert tokens_per_clip(model.config, frames, crop) == tokens


def test_a_rotation_the_tables_cannot_rebuild_is_left_to_its_module() -> None:
    part = model_part(load_model("tiny", LABELS), "classifier")
    attention = next(module for module in part.modules() if isinstance(module, VJEPA2RopeAttention))
    attention.apply_rotary_embeddings = lambda qk, pos_ids: qk.roll(2, -1)  # mixes channels of different pairs
    assert rotation_tables(attention, 128) is None
    with fixed_rope(part, torch.zeros(1, 16, 3, 64, 64)) as changed:
        assert changed == sum(isinstance(module, VJEPA2RopeAttention) for module in part.modules()) - 1
        assert not hasattr(attention, "rope_swap")


@dataclass(frozen=True)
class ShiftedEngine(Engine):
    """An engine whose answers are the model's logits plus `noise` x the class index; it counts its builds."""

    noise: float = 0.0
    builds: list = field(default_factory=list)

    def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
        self.builds.append(1)
        return lambda pixels: part(pixels).detach() + self.noise * torch.arange(part.model.num_labels)


@dataclass(frozen=True)
class BlockwiseEngine(Int8Engine):
    """An int8 engine made for the test: each encoder block in int8 adds `errors[block]` x the class index to the
    logits (and `interaction` more once three blocks are int8, an error no single block shows). Its files are the
    list of blocks kept fp32."""

    errors: tuple[float, ...] = ()
    interaction: float = 0.0
    quantized: list = field(default_factory=list)  # the sets of fp32 blocks written, in turn
    converted: list = field(default_factory=list)  # the parts converted: what its files run

    def convert(self, part: Any, example: Any, workdir: Path) -> Any:
        self.converted.append(part)
        return part

    def blocks(self, converted: Any) -> list[int]:
        return list(range(len(self.errors)))

    def quantize(self, converted: Any, folder: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> None:
        self.quantized.append(sorted(fp32_blocks))
        (folder / "fp32_blocks.json").write_text(json.dumps(sorted(fp32_blocks)))

    def open(self, folder: Path) -> Runner:
        kept = set(json.loads((folder / "fp32_blocks.json").read_text()))
        part = self.converted[-1]
        int8 = [block for block in range(len(self.errors)) if block not in kept]
        shift = sum(self.errors[block] for block in int8) + (self.interaction if len(int8) >= 3 else 0.0)
        return lambda pixels: part(pixels).detach() + shift * torch.arange(part.model.num_labels)


def test_a_checked_engine_is_close_to_fp32_and_its_verdict_is_cached(tiny: torch.nn.Module, clips: torch.Tensor,
                                                                       probes: Evidence, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    close = ShiftedEngine("test-close", "logits shifted by 1e-4 per class index", noise=1e-4)
    monkeypatch.setitem(ENGINES, close.name, close)
    first = prepare(tiny, "test-close", tmp_path, evidence=probes)
    assert first.engine == "test-close" and not first.cached and first.fallback is None and not first.needs_model
    assert first.check.passed and first.check.clips == PROBES and first.check.kind == "probes"
    assert first.check.prob_bound == pytest.approx(1e-4 * 5 / 4, rel=1e-3)  # a quarter of the logits' spread
    assert first.check.max_prob_diff <= first.check.prob_bound <= PROBE_LIMIT
    [row] = list_entries(tmp_path)
    assert row["engine"] == "test-close" and row["status"] == "ok" and row["check"]["passed"]
    assert row["evidence"] == f"{PROBES} synthetic probe clips"
    again = prepare(tiny, "test-close", tmp_path, evidence=probe_evidence(16, 64))
    assert again.cached and again.check == first.check and close.builds == [1, 1]  # built, not checked again
    fresh = probe_evidence(16, 64)
    prepare(tiny, "test-close", tmp_path, evidence=fresh)
    assert "clips" not in vars(fresh)  # the verdict came from the cache: no probe was even rendered


def test_the_key_follows_every_weight_what_shapes_the_output_and_the_evidence(tiny: torch.nn.Module) -> None:
    def key(module: torch.nn.Module, **changes: object) -> str:
        args = {"engine": "ort-int8", "part": "classifier", "module": module, "feature_layers": (), "frames": 16,
                "crop": 64, "evidence": "probes:19:7", **changes}
        return engine_key(**args)

    part = model_part(tiny, "classifier")
    base = key(part)
    assert key(model_part(load_model("tiny", LABELS), "classifier")) == base  # the same weights
    assert {key(part, engine="openvino-int8"), key(part, part="encoder"), key(part, frames=8), key(part, crop=32),
            key(part, feature_layers=(0, 1)), key(part, evidence="views:1a2b")}.isdisjoint({base})
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


def test_an_engine_off_fp32_is_rejected_once_and_fp32_answers(tiny: torch.nn.Module, clips: torch.Tensor,
                                                              probes: Evidence, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    noisy = ShiftedEngine("test-noisy", "logits shifted by 1 per class index", noise=1.0)
    monkeypatch.setitem(ENGINES, noisy.name, noisy)
    with caplog.at_level(logging.WARNING):
        prepared = prepare(tiny, "test-noisy", tmp_path, evidence=probes)
    assert prepared.engine == "fp32" and prepared.requested == "test-noisy"
    assert "answers differ from fp32's: max |prob diff|" in prepared.fallback
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.getMessage().startswith("engine test-noisy cannot run this model (answers differ")
    assert warning.getMessage().endswith("): using fp32") and "\n" not in warning.getMessage()
    assert torch.equal(prepared(clips), prepare(tiny, "fp32", None)(clips))
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and not row["check"]["passed"] and row["reason"] == prepared.fallback
    again = prepare(tiny, "test-noisy", tmp_path, evidence=probes)
    assert again.engine == "fp32" and noisy.builds == [1]  # the verdict was read, the engine not built again


def test_an_int8_engine_keeps_its_most_sensitive_blocks_fp32_until_it_passes(
        tiny: torch.nn.Module, clips: torch.Tensor, probes: Evidence, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Block 1 moves the logits most, then an interaction of three int8 blocks: the sensitivities say keep block 1
    fp32, the check on the probes then wants one more, the next most sensitive (0, first of the ties)."""
    mixed = BlockwiseEngine("test-int8", "blocks shift the logits", errors=(0.001, 0.006, 0.001, 0.001),
                            interaction=0.004)
    monkeypatch.setitem(ENGINES, mixed.name, mixed)
    prepared = prepare(tiny, "test-int8", tmp_path, evidence=probes)
    assert prepared.engine == "test-int8" and prepared.check.passed and prepared.cached is False
    plan = prepared.plan
    assert plan.blocks == 4 and plan.fp32_blocks == (0, 1)
    assert plan.sensitivity == pytest.approx({0: 0.00125, 1: 0.0075, 2: 0.00125, 3: 0.00125}, rel=1e-3)
    assert [t["fp32_blocks"] for t in plan.tries] == [0, 1, 2] and [t["passed"] for t in plan.tries] == [
        False, False, True]
    # whole, then each block alone in int8 (three others fp32), then the sets tried
    assert mixed.quantized == [[], [1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [1], [0, 1]]
    shift = 0.001 + 0.001  # blocks 2 and 3 in int8
    assert torch.allclose(prepared(clips), prepare(tiny, "fp32", None)(clips) + shift * torch.arange(6), atol=1e-5)
    [row] = list_entries(tmp_path)
    assert row["plan"]["fp32_blocks"] == [0, 1] and row["status"] == "ok"
    again = prepare(tiny, "test-int8", tmp_path, evidence=probes)
    assert again.cached and again.plan == plan and len(mixed.quantized) == 7  # read back, nothing quantized


def test_building_an_engine_shows_its_steps_in_a_log_and_quiet_shows_none(
        tiny: torch.nn.Module, probes: Evidence, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A large model's first start takes minutes: its steps and clips show on stderr (a log here), as any long
    work does (the rate scaled down so that a tiny model's build counts as long)."""
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.001)
    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    mixed = BlockwiseEngine("test-int8", "blocks shift the logits", errors=(0.001, 0.006, 0.001, 0.001),
                            interaction=0.004)
    monkeypatch.setitem(ENGINES, mixed.name, mixed)
    prepare(tiny, "test-int8", tmp_path / "quiet", evidence=probes, progress=False)
    assert capsys.readouterr().err == ""
    prepare(tiny, "test-int8", tmp_path / "shown", evidence=probes)
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("engine test-int8: ") for line in lines)
    assert any("clips, " in line and f"step check on {PROBES} synthetic probe clips" in line for line in lines)
    assert any("step block sensitivity 4/4" in line for line in lines)
    assert lines[-1].startswith(f"engine test-int8: {3 * PROBES + 4 * 2} clips")  # 3 checks, 4 blocks' 2 clips


def test_an_int8_engine_that_needs_more_than_half_its_blocks_fp32_is_rejected(
        tiny: torch.nn.Module, probes: Evidence, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heavy = BlockwiseEngine("test-int8", "every block moves the logits", errors=(0.01, 0.01, 0.01, 0.01))
    monkeypatch.setitem(ENGINES, heavy.name, heavy)
    prepared = prepare(tiny, "test-int8", tmp_path, evidence=probes)
    assert prepared.engine == "fp32" and prepared.fallback.startswith(
        "answers differ from fp32's with 2 of 4 encoder blocks kept fp32 (0, 1): max |prob diff|")
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and [t["fp32_blocks"] for t in row["plan"]["tries"]] == [0, 2]
    assert not (tmp_path / row["key"] / "fp32_blocks.json").exists()  # a rejected entry keeps only its verdict


def test_auto_takes_the_first_that_keeps_the_answers(tiny: torch.nn.Module, probes: Evidence, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = ShiftedEngine("test-noisy", "logits shifted by 1 per class index", noise=1.0)
    close = ShiftedEngine("test-close", "logits shifted by 1e-4 per class index", noise=1e-4)
    for engine in (noisy, close):
        monkeypatch.setitem(ENGINES, engine.name, engine)
    monkeypatch.setattr("vjepa_core.inference.engines.prepare.auto_order", lambda place: ("test-noisy", "test-close"))
    prepared = prepare(tiny, "auto", tmp_path, evidence=probes)
    assert prepared.engine == "test-close" and prepared.fallback is None and prepared.check.passed
    [reason] = prepared.passed_over
    assert reason.startswith("test-noisy: answers differ from fp32's: max |prob diff|")
    monkeypatch.setattr("vjepa_core.inference.engines.prepare.auto_order", lambda place: ("test-noisy",))
    none = prepare(tiny, "auto", tmp_path, evidence=probes)
    assert none.engine == "fp32" and none.fallback == reason and none.passed_over == ()


def test_an_engine_that_cannot_run_here_falls_back(tiny: torch.nn.Module, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    absent = ShiftedEngine("test-absent", "needs a package", requires=("no_such_package_vjepa",))
    monkeypatch.setitem(ENGINES, absent.name, absent)
    with caplog.at_level(logging.WARNING):
        missing = prepare(tiny, "test-absent", tmp_path)
    assert missing.engine == "fp32" and "pip install no_such_package_vjepa" in missing.fallback
    assert absent.builds == [] and list_entries(tmp_path) == []
    on_gpu = prepare_engine(tiny, part="classifier", engine="ort-int8", device=torch.device("cuda"), frames=16,
                            crop=64, cache_root=tmp_path)
    assert on_gpu.engine == "fp32" and "CPU only" in on_gpu.fallback
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2  # one line each


def test_an_engine_that_fails_to_build_falls_back(tiny: torch.nn.Module, probes: Evidence, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Broken(Engine):
        def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
            raise EngineUnfit("cannot export to ONNX (UnsupportedOp: aten::frobnicate)")

    monkeypatch.setitem(ENGINES, "test-broken", Broken("test-broken", "always fails"))
    prepared = prepare(tiny, "test-broken", tmp_path, evidence=probes)
    assert prepared.engine == "fp32" and prepared.fallback == "cannot export to ONNX (UnsupportedOp: aten::frobnicate)"
    [row] = list_entries(tmp_path)
    assert row["status"] == "rejected" and row["reason"] == prepared.fallback


def views(count: int) -> Evidence:
    return view_evidence(lambda: torch.zeros(count, 1), run_id="1a2b3c", videos=[f"v{i}.mp4" for i in range(count)],
                         views=count)


def test_on_a_run_s_views_the_check_is_top1_and_the_largest_probability_change() -> None:
    logits = torch.zeros(50, 3)
    logits[:, 0] = 2.0
    one_flip, two_flips = logits.clone(), logits.clone()
    one_flip[0] = torch.tensor([0.0, 2.0, 0.0])
    two_flips[:2] = torch.tensor([0.0, 2.0, 0.0])
    checked = agreement("classifier", logits, logits + 0.001 * torch.arange(3), evidence=views(50))
    assert checked.passed and checked.kind == "views" and checked.limit == VIEW_LIMIT and checked.clips == 50
    assert checked.top1_agreement == 1.0 and checked.evidence == "50 views of 50 validation videos of run 1a2b3c"
    assert 0 < checked.p99_prob_diff <= checked.max_prob_diff < VIEW_LIMIT
    assert "top-1 the same on 100.0%, max |prob diff|" in checked.describe()
    flipped = agreement("classifier", logits, one_flip, evidence=views(50))
    assert flipped.top1_agreement == 0.98 and not flipped.passed  # a flip is a large probability change too
    assert agreement("classifier", logits, two_flips, evidence=views(50)).top1_agreement == 0.96
    moved = agreement("classifier", logits, logits + torch.tensor([0.0, 0.0, 0.2]), evidence=views(50))
    assert moved.top1_agreement == 1.0 and moved.max_prob_diff > VIEW_LIMIT and not moved.passed
    assert moved.excess == pytest.approx(moved.max_prob_diff / VIEW_LIMIT)


def test_agreement_measures_probabilities_and_tokens(probes: Evidence) -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.1, 0.0]])
    same = agreement("classifier", logits, logits.clone(), evidence=probes)
    assert same.passed and same.max_prob_diff == 0.0 and same.top1_agreement == 1.0 and same.limit == PROBE_LIMIT
    flipped = agreement("classifier", logits, logits + torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]),
                        evidence=probes)
    assert not flipped.passed and flipped.top1_agreement == 0.5 and flipped.max_prob_diff > PROB_TOLERANCE
    assert not agreement("classifier", logits, logits * float("nan"), evidence=probes).passed
    tokens = torch.randn(2, 8, 4)
    small = agreement("encoder", tokens, tokens * 1.01, evidence=probes)
    assert small.passed and small.token_error == pytest.approx(0.01, rel=1e-3) and small.min_cosine > 0.9999
    assert not agreement("encoder", tokens, tokens * 1.2, evidence=probes).passed


def test_probe_clips_are_preprocessed_video_of_the_model_shape() -> None:
    evidence = probe_evidence(8, 64)
    clips = evidence.clips
    assert clips.shape == (PROBES, 8, 3, 64, 64) and clips.dtype == torch.float32
    assert torch.isfinite(clips).all() and torch.equal(clips, probe_evidence(8, 64).clips)
    assert -2.5 < float(clips.min()) < -0.5 and 0.5 < float(clips.max()) < 2.7  # ImageNet-normalised pixels
    assert float((clips[:, 1:] - clips[:, :-1]).abs().mean()) > 0.01  # frames move
    assert len({tuple(clip.flatten()[:64].tolist()) for clip in clips}) == PROBES  # every probe its own video


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


def test_int8_engines_tell_the_encoder_its_blocks_and_the_head_apart_by_node_name() -> None:
    assert in_encoder("/model/vjepa2/encoder/layer.3/mlp/fc1/MatMul")  # ONNX, traced
    assert in_encoder("__module.model.vjepa2.encoder.layer.3.mlp.fc1/aten::linear/MatMul")  # OpenVINO
    assert not in_encoder("/model/pooler/cross_attention_layer/mlp/fc1/MatMul")
    assert not in_encoder("__module.model.classifier/aten::linear/MatMul")
    assert not in_encoder("/model/vjepa2/encoder_norm/MatMul") and not in_encoder("node_MatMul_12")
    assert encoder_block("/model/vjepa2/encoder/layer.13/mlp/fc1/MatMul") == 13
    assert encoder_block("model.vjepa2.encoder.layer.3.attention.query/linear/aten.linear.default/MatMul") == 3
    assert encoder_block("encoder.layer.0.mlp.fc2/linear_5/MatMul") == 0  # the encoder part alone
    assert encoder_block("/model/pooler/self_attention_layers.0/mlp/fc1/MatMul") is None
    assert encoder_block("/model/vjepa2/encoder/embeddings/patch_embeddings/proj/Conv") is None


def test_openvino_quantizes_activations_in_groups_of_an_eighth_of_the_encoder_s_width() -> None:
    from vjepa_core.inference.engines.openvino import activation_group

    def part(width: int, lora_rank: int | None = None) -> torch.nn.Module:
        attention = torch.nn.Module()
        attention.query = torch.nn.Linear(width, width)
        if lora_rank:
            attention.query.lora_B = torch.nn.Linear(lora_rank, width)  # a LoRA factor, not the width
        attention.fc2 = torch.nn.Linear(4 * width, width)
        encoder = torch.nn.Module()
        encoder.layer = torch.nn.ModuleList([attention])
        root = torch.nn.Module()
        root.encoder, root.classifier = encoder, torch.nn.Linear(8, 2)  # the head's width does not count
        return root

    assert [activation_group(part(width)) for width in (128, 256, 512, 768, 1024, 1408, 1664)] == [
        32, 32, 64, 64, 128, 128, 128]
    assert activation_group(part(1024, lora_rank=8)) == 128
