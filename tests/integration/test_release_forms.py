"""Every form a release takes, checked against vjepa-lab's own model: merged (fp32, fp16, bf16) and adapter-only,
the models the default study does not hold (lora_backbone, a 2-layer pooler; test_release_cli releases each
strategy of the default study), the adapter that must carry a trained pooler, the video processor; and the
folder as a whole (replaced with --force, nothing left on a full disk). The cards' lines run as written, in the
environments their cards list: test_release_environments.

Runs come from `release_support.make_run` (a real checkpoint of a tiny model whose trainable weights moved, and
warehouse rows): no training, so the weights exercise every merge path without the cost of fitting.
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
from transformers import AutoVideoProcessor

from tests.release_support import LABELS, FakeRun, make_run, release
from vjepa_core.data import eval_views
from vjepa_core.errors import WriteFailed
from vjepa_core.release.adapter import BASE_DIR, POOLER_FILE, load_adapter_form
from vjepa_core.release.hub_processor import PROCESSOR_CODE
from vjepa_core.release.model import load_plain, logits, probe_clip, release_config
from vjepa_core.release.writer import FP32_TOLERANCE, RELEASE_FILE, ReleaseReport
from vjepa_core.store.checkpoint import load_checkpoint


def vjepa_logits(run: FakeRun, clip: torch.Tensor) -> torch.Tensor:
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
                                                           "video_preprocessor_config.json", PROCESSOR_CODE]


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
    remote = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)  # the folder's own: the run's clip
    assert (remote.frames_per_clip, remote.frame_stride) == (pre["frames_per_clip"], pre["frame_stride"])
    evaluation = json.loads((folder / RELEASE_FILE).read_text())["evaluation"]
    assert {key: evaluation[key] for key in ("frames_per_clip", "frame_stride", "eval_clips", "eval_crops")} == \
        {key: pre[key] for key in ("frames_per_clip", "frame_stride", "eval_clips", "eval_crops")}


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


# The default study's strategies round-trip in test_release_cli (trained runs); here, what it does not hold.
@pytest.mark.parametrize(("strategy", "changes"), [("lora_backbone", {}), ("pooler_head", {"pooler_layers": 2})])
def test_other_models_round_trip_through_plain_transformers(strategy: str, changes: dict, tmp_path: Path) -> None:
    run = make_run(tmp_path, strategy, **changes)
    release(run, tmp_path / "out")
    plain = load_plain(tmp_path / "out")
    assert plain.config.num_pooler_layers == changes.get("pooler_layers", 1)
    assert not any("lora" in name for name in plain.state_dict())
    clip = clip_for(tmp_path / "out")
    assert (logits(plain, clip) - vjepa_logits(run, clip)).abs().max().item() <= FP32_TOLERANCE


def test_adapter_only_carries_a_pooler_the_run_trained(tmp_path: Path) -> None:
    run = make_run(tmp_path, "pooler_head_lora")
    release(run, tmp_path / "adapter", adapter_only=True)
    adapter = tmp_path / "adapter"
    # PEFT cannot save a module's own weights beside LoRA layers inside it: the pooler goes in a file of its own.
    assert (adapter / POOLER_FILE).is_file()
    assert POOLER_FILE in ModelCard.load(adapter / "README.md").text
    model = load_adapter_form(adapter, str(adapter / BASE_DIR))
    clip = probe_clip(model.config, 4)
    assert (logits(model, clip) - vjepa_logits(run, clip)).abs().max().item() <= FP32_TOLERANCE


def test_bf16_halves_the_weights(tmp_path: Path) -> None:
    run = make_run(tmp_path, "full")
    release(run, tmp_path / "fp32")
    report = release(run, tmp_path / "bf16", dtype="bf16")
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < \
        0.55 * (tmp_path / "fp32" / "model.safetensors").stat().st_size
    plain = load_plain(tmp_path / "bf16")
    assert next(plain.parameters()).dtype == torch.bfloat16
    clip = clip_for(tmp_path / "fp32")
    delta = (logits(plain, clip) - vjepa_logits(run, clip)).abs().max().item()
    assert 0 < delta < 0.2 and 0 < report.max_logit_delta < 0.2
