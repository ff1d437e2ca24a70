"""A release opens in plain transformers (and PEFT) and gives vjepa-lab's logits; bad input writes nothing.

Slower cases (every strategy's round trip, the adapter that carries a pooler, bf16, a fresh interpreter with no
vjepa-lab module) are in tests/integration/test_release_forms.py; here one `lora` run's releases are shared.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from release_support import LABELS, FakeRun, make_run
from transformers import AutoVideoProcessor

from vjepa_core.data import eval_views
from vjepa_core.errors import UserError, WriteFailed
from vjepa_core.release.adapter import BASE_DIR, POOLER_FILE, load_adapter_form
from vjepa_core.release.model import load_plain, logits, probe_clip, release_config
from vjepa_core.release.writer import FP32_TOLERANCE, RELEASE_FILE, ReleaseReport, ReleaseRequest, release_run
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.store.warehouse import RunRecord, Warehouse


def release(run: FakeRun, out: Path, **options: object) -> ReleaseReport:
    request = ReleaseRequest(run.run_id, out, run.warehouse, **options)  # type: ignore[arg-type]
    return release_run(request, reproduce=f"runner run --strategy {run.spec.strategy}",
                       release_command=f"runner release {run.run_id} {out}")


def vjepa_logits(run: FakeRun, clip: torch.Tensor) -> torch.Tensor:
    """What vjepa-lab's own model (the checkpoint loader's, LoRA unmerged) says about `clip`."""
    return logits(load_checkpoint(run.checkpoint).model, clip)


def clip_for(folder: Path) -> torch.Tensor:
    return probe_clip(load_plain(folder).config, 4)


@dataclass(frozen=True)
class LoraReleases:
    run: FakeRun
    root: Path
    reports: dict[str, ReleaseReport]


@pytest.fixture(scope="module")
def lora_releases(tmp_path_factory: pytest.TempPathFactory) -> LoraReleases:
    """One `lora` run released merged (fp32, fp16) and adapter-only."""
    root = tmp_path_factory.mktemp("lora-release")
    run = make_run(root, "lora")
    forms = {"fp32": {}, "fp16": {"dtype": "fp16"}, "adapter": {"adapter_only": True}}
    reports = {name: release(run, root / name, **options) for name, options in forms.items()}
    return LoraReleases(run, root, reports)


def test_merged_lora_opens_in_plain_transformers_with_the_same_logits(lora_releases: LoraReleases) -> None:
    folder = lora_releases.root / "fp32"
    plain = load_plain(folder)
    assert type(plain).__name__ == "VJEPA2ForVideoClassification"
    assert plain.config.id2label == dict(enumerate(LABELS))
    assert plain.config.num_frames == lora_releases.run.spec.frames_per_clip
    assert not any("lora" in name for name in plain.state_dict())
    clip = clip_for(folder)
    delta = (logits(plain, clip) - vjepa_logits(lora_releases.run, clip)).abs().max().item()
    assert delta <= FP32_TOLERANCE
    assert lora_releases.reports["fp32"].max_logit_delta <= FP32_TOLERANCE  # the release's own check
    assert sorted(lora_releases.reports["fp32"].files) == ["README.md", "config.json", "confusion_matrix.png",
                                                           "model.safetensors", RELEASE_FILE,
                                                           "video_preprocessor_config.json"]


def test_adapter_only_is_peft_format_small_and_gives_the_merged_logits(lora_releases: LoraReleases) -> None:
    adapter, merged = lora_releases.root / "adapter", lora_releases.root / "fp32"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["classifier"] and config["base_model_name_or_path"] == BASE_DIR
    assert not (adapter / "model.safetensors").exists() and not (adapter / POOLER_FILE).exists()
    # A preset base exists only inside vjepa-lab, so the folder carries it.
    assert (adapter / BASE_DIR / "model.safetensors").is_file()
    size = (adapter / "adapter_model.safetensors").stat().st_size
    assert size < (merged / "model.safetensors").stat().st_size / 20
    clip = clip_for(merged)
    via_peft = logits(load_adapter_form(adapter, str(adapter / BASE_DIR)), clip)
    assert (via_peft - logits(load_plain(merged), clip)).abs().max().item() <= FP32_TOLERANCE
    assert lora_releases.reports["adapter"].form == "adapter"


def test_half_precision_halves_the_weights_and_measures_its_logit_difference(lora_releases: LoraReleases) -> None:
    dtype = "fp16"
    folder = lora_releases.root / dtype
    size = (folder / "model.safetensors").stat().st_size
    assert size < 0.55 * (lora_releases.root / "fp32" / "model.safetensors").stat().st_size
    plain = load_plain(folder)
    assert next(plain.parameters()).dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    clip = clip_for(lora_releases.root / "fp32")
    delta = (logits(plain, clip) - vjepa_logits(lora_releases.run, clip)).abs().max().item()
    assert 0 < delta < 0.1
    assert 0 < lora_releases.reports[dtype].max_logit_delta < 0.1
    assert f"Weights stored in {dtype}" in ModelCard.load(folder / "README.md").text


def test_the_video_processor_is_the_runs_evaluation_preprocessing(lora_releases: LoraReleases) -> None:
    folder = lora_releases.root / "fp32"
    processor = AutoVideoProcessor.from_pretrained(folder)
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 90, 120, 3), dtype=np.uint8)
    theirs = processor(torch.from_numpy(frames).permute(0, 3, 1, 2), do_sample_frames=False,
                       return_tensors="pt")["pixel_values_videos"][0]
    pre = load_checkpoint(lora_releases.run.checkpoint).manifest["preprocessing"]
    ours = eval_views(frames, pre["crop_size"])[0]
    assert theirs.shape == ours.shape and (theirs - ours).abs().max().item() < 1e-5
    assert processor.num_frames == pre["frames_per_clip"]
    evaluation = json.loads((folder / RELEASE_FILE).read_text())["evaluation"]
    assert {key: evaluation[key] for key in ("frames_per_clip", "frame_stride", "eval_clips", "eval_crops")} == \
        {key: pre[key] for key in ("frames_per_clip", "frame_stride", "eval_clips", "eval_crops")}


def test_feature_layers_are_refused_in_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path, "pooler_head", feature_layers=(0, 1))
    with pytest.raises(UserError, match=r"--feature-layers") as error:
        release(run, tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path, "head")
    lora = make_run(tmp_path / "l", "lora")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cases = {
        "unknown": (ReleaseRequest("feedfacefeedface", tmp_path / "a", run.warehouse), "not in"),
        "no warehouse": (ReleaseRequest(run.run_id, tmp_path / "a", tmp_path / "none.duckdb"), "no warehouse"),
        "not empty": (ReleaseRequest(run.run_id, busy, run.warehouse), "not empty"),
        "force on a stranger": (ReleaseRequest(run.run_id, busy, run.warehouse, force=True), "holds no earlier"),
        "adapter of head": (ReleaseRequest(run.run_id, tmp_path / "a", run.warehouse, adapter_only=True),
                            "needs a LoRA run"),
        "space + adapter": (ReleaseRequest(lora.run_id, tmp_path / "a", lora.warehouse, adapter_only=True,
                                           space=True), "--space"),
        "dtype": (ReleaseRequest(run.run_id, tmp_path / "a", run.warehouse, dtype="int8"), "--dtype"),
        "out is a file": (ReleaseRequest(run.run_id, busy / "notes.txt", run.warehouse), "is a file"),
    }
    for name, (request, words) in cases.items():
        with pytest.raises(UserError, match=words) as error:
            release_run(request, reproduce="r", release_command="c")
        assert "\n" not in str(error.value), name
    assert not (tmp_path / "a").exists()
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_a_run_whose_checkpoint_is_gone_or_that_failed(tmp_path: Path) -> None:
    run = make_run(tmp_path, "head")
    shutil.rmtree(run.checkpoint)
    with pytest.raises(UserError, match="has no checkpoint"):
        release(run, tmp_path / "out")
    Warehouse(run.warehouse).write_run(RunRecord(run={"run_id": "badbadbadbadbad0", "status": "failed",
                                                      "error": "RuntimeError: loss is NaN\ntraceback", "spec": {}}))
    with pytest.raises(UserError, match=r"did not succeed \(status failed: RuntimeError: loss is NaN\)"):
        release_run(ReleaseRequest("badbadbadbadbad0", tmp_path / "out", run.warehouse), reproduce="r",
                    release_command="c")
    assert not (tmp_path / "out").exists()


def test_force_replaces_an_earlier_release(tmp_path: Path, lora_releases: LoraReleases) -> None:
    out = tmp_path / "out"
    shutil.copytree(lora_releases.root / "adapter", out)
    run = make_run(tmp_path, "head")
    release(run, out, force=True)
    assert json.loads((out / RELEASE_FILE).read_text())["run_id"] == run.run_id
    assert not (out / "adapter_config.json").exists()  # the whole folder was replaced, not merged into
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_leaves_nothing(tmp_path: Path, small_disk) -> None:  # type: ignore[no-untyped-def]
    run = make_run(tmp_path, "head")
    disk = small_disk(1024)  # the tiny model's weights alone are ~4 MB
    with pytest.raises(WriteFailed, match="no space left on the device") as error:
        release(run, disk.path / "out")
    assert "\n" not in str(error.value) and "another disk" in str(error.value)
    assert list(disk.path.iterdir()) == []


def test_release_config_adds_num_frames_only(lora_releases: LoraReleases) -> None:
    loaded = load_checkpoint(lora_releases.run.checkpoint)
    config = release_config(loaded.model, loaded.manifest["preprocessing"])
    assert config.num_frames == lora_releases.run.spec.frames_per_clip
    assert not hasattr(loaded.model.config, "num_frames")
    assert {k: v for k, v in config.to_dict().items() if k != "num_frames"} == loaded.model.config.to_dict()
