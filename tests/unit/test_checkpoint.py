"""Checkpoints hold only trained weights as safetensors and rebuild the exact model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vjepa_core.errors import UserError
from vjepa_core.models import base_fingerprint, feature_layers, load_model, load_run_model
from vjepa_core.spec import RunSpec
from vjepa_core.store.checkpoint import (
    WEIGHT_DTYPES,
    checkpoint_dtype,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
)
from vjepa_core.strategies import STRATEGIES, get_strategy

LABELS = ["up", "down", "still"]


def trained_model(strategy: str, tmp_path: Path, weights_dtype: str = "fp32", **changes: object
                  ) -> tuple[torch.nn.Module, Path]:
    spec = RunSpec(strategy=strategy, lora_rank=4, **changes)
    s = get_strategy(strategy)
    model = load_run_model(spec, LABELS)
    fp = base_fingerprint(model)
    model = s.adapt(model, spec)
    with torch.no_grad():  # stand-in for training: every trainable weight changes
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    path = save_checkpoint(tmp_path / spec.run_id, model, spec=spec, labels=LABELS, base_fp=fp,
                           preprocessing={"crop_size": 64}, metrics={"test_acc": 0.5}, weights_dtype=weights_dtype)
    return model, path


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_round_trip_gives_identical_logits(strategy: str, tmp_path: Path) -> None:
    model, path = trained_model(strategy, tmp_path)
    loaded = load_checkpoint(path)
    clips = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(pixel_values_videos=clips).logits,
                                   model.eval()(pixel_values_videos=clips).logits)
    assert loaded.labels == LABELS
    assert not list(path.rglob("*.bin")) and not list(path.rglob("*.pt"))  # no pickles


@pytest.mark.parametrize("strategy", ["pooler_head", "lora"])
def test_the_probe_recipe_comes_back_with_the_checkpoint(strategy: str, tmp_path: Path) -> None:
    """Feature layers and pooler depth are part of the model a checkpoint is loaded onto."""
    model, path = trained_model(strategy, tmp_path, feature_layers=(0, 1), pooler_layers=2)
    loaded = load_checkpoint(path)
    assert feature_layers(loaded.model) == (0, 1)
    assert loaded.model.config.num_pooler_layers == (2 if strategy == "pooler_head" else 1)  # lora reads no depth
    clips = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(pixel_values_videos=clips).logits,
                                   model.eval()(pixel_values_videos=clips).logits)


def test_only_trained_weights_are_saved(tmp_path: Path) -> None:
    _, path = trained_model("head", tmp_path)
    assert set(load_file(path / "trained.safetensors")) == {"classifier.weight", "classifier.bias"}
    _, path = trained_model("lora", tmp_path)
    adapter = load_file(path / "adapter" / "adapter_model.safetensors")
    assert adapter and all(".lora_" in k and "pooler" in k for k in adapter)
    assert (path / "adapter" / "adapter_config.json").is_file()


def test_peft_can_load_the_adapter_folder(tmp_path: Path) -> None:
    from peft import PeftModel

    model, path = trained_model("lora", tmp_path)
    base = load_model("tiny", LABELS)
    peft_model = PeftModel.from_pretrained(base, path / "adapter")
    lora_a = next(p for n, p in peft_model.named_parameters() if "lora_A" in n)
    assert lora_a.abs().sum() > 0


def test_other_base_model_is_refused(tmp_path: Path) -> None:
    _, path = trained_model("lora", tmp_path)
    with pytest.raises(UserError, match="different weights"):
        load_checkpoint(path, base_model="small")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no manifest.json"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(("strategy", "damaged"), [("head", "trained.safetensors"),
                                                   ("lora", "adapter/adapter_model.safetensors")])
def test_a_damaged_or_missing_weights_file_is_one_line(strategy: str, damaged: str, tmp_path: Path) -> None:
    _, path = trained_model(strategy, tmp_path)
    weights = path / damaged
    whole = weights.read_bytes()
    for cut in (whole[:500], whole[:-100]):  # the header cut, then the tensors
        weights.write_bytes(cut)
        unreadable = rf"^checkpoint: .*{damaged} is not a readable safetensors file \("
        with pytest.raises(UserError, match=unreadable) as caught:
            load_checkpoint(path)
        assert "\n" not in str(caught.value)
    weights.unlink()
    with pytest.raises(UserError, match=rf"^checkpoint: .*{damaged} is missing$"):
        load_checkpoint(path)


def test_a_manifest_that_is_not_a_checkpoints_is_one_line(tmp_path: Path) -> None:
    for text in ('{"hello": 1}', "[1, 2]"):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(UserError, match=r"manifest.json lacks spec, labels, base_model \(not a vjepa-lab"):
            load_checkpoint(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe not text")
    with pytest.raises(UserError, match="is not valid JSON"):
        read_manifest(tmp_path)


# Each kind of saved weight: the classifier, a PEFT adapter, the pooler with an adapter, the encoder.
@pytest.mark.parametrize(("strategy", "dtype"), [("head", "fp16"), ("lora", "fp16"), ("pooler_head_lora", "bf16"),
                                                 ("full", "fp16")])
def test_half_precision_checkpoints_predict_the_same(strategy: str, dtype: str, tmp_path: Path) -> None:
    """Half the bytes; class probabilities within 1e-3 (fp16) / 1e-2 (bf16) of the fp32 model, same top label."""
    model, path = trained_model(strategy, tmp_path, weights_dtype=dtype)
    stored = load_file(path / "trained.safetensors")
    assert {t.dtype for t in stored.values()} == {WEIGHT_DTYPES[dtype]}
    assert read_manifest(path)["weights_dtype"] == dtype
    loaded = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())  # cast back onto the fp32 base
    clips = torch.randn(8, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        probs = loaded.model(pixel_values_videos=clips).logits.softmax(-1)
        expected = model.eval()(pixel_values_videos=clips).logits.softmax(-1)
    assert (probs - expected).abs().max().item() < (1e-3 if dtype == "fp16" else 1e-2)
    assert torch.equal(probs.argmax(-1), expected.argmax(-1))


def test_half_precision_halves_the_files(tmp_path: Path) -> None:
    _, full = trained_model("pooler_head", tmp_path / "fp32")
    _, half = trained_model("pooler_head", tmp_path / "fp16", weights_dtype="fp16")
    ratio = (half / "trained.safetensors").stat().st_size / (full / "trained.safetensors").stat().st_size
    assert 0.49 < ratio < 0.51


@pytest.mark.parametrize(("precision", "frozen_encoder", "expected"), [
    ("bf16", False, "bf16"), ("fp16", True, "fp16"), ("fp32", True, "fp16"), ("fp32", False, "fp32")])
def test_auto_checkpoint_dtype(precision: str, frozen_encoder: bool, expected: str) -> None:
    assert checkpoint_dtype("auto", precision=precision, frozen_encoder=frozen_encoder) == expected
    assert checkpoint_dtype("fp32", precision=precision, frozen_encoder=frozen_encoder) == "fp32"
    with pytest.raises(UserError, match="checkpoint dtype"):
        checkpoint_dtype("int8", precision=precision, frozen_encoder=frozen_encoder)
