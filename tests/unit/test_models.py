"""Model loading: presets are deterministic; a save_pretrained folder loads through the hub code path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vjepa_core.errors import UserError
from vjepa_core.models import base_fingerprint, load_config, load_model, tokens_per_clip
from vjepa_core.models.loading import preset_file, shipped_weights

LABELS = ["up", "down"]


def test_presets_are_the_same_base_model_every_time() -> None:
    a, b = load_model("tiny", LABELS, seed=0), load_model("tiny", LABELS, seed=1)
    assert base_fingerprint(a) == base_fingerprint(b)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)  # the new head follows the run seed
    assert base_fingerprint(load_model("tiny", LABELS, random_init=True)) != base_fingerprint(a)


def test_forward_shapes() -> None:
    model = load_model("tiny", LABELS)
    clips = torch.randn(2, 8, 3, 64, 64)
    tokens = model.vjepa2(pixel_values_videos=clips, skip_predictor=True).last_hidden_state
    assert tokens.shape == (2, tokens_per_clip(model.config, 8), 128) == (2, 4 * 16, 128)
    assert model(pixel_values_videos=clips).logits.shape == (2, 2)


def test_local_save_pretrained_folder(tmp_path: Path) -> None:
    """The hub path (from_pretrained) exercised on a local folder: a pretrained ssv2-like checkpoint
    with 5 classes is re-headed for our 2 labels, keeping encoder and pooler weights."""
    pretrained = load_model("tiny", ["a", "b", "c", "d", "e"])
    pretrained.save_pretrained(tmp_path / "vjepa2-local")
    loaded = load_model(str(tmp_path / "vjepa2-local"), LABELS, seed=3)
    assert loaded.config.num_labels == 2 and loaded.config.id2label == {0: "up", 1: "down"}
    assert base_fingerprint(loaded) == base_fingerprint(pretrained)
    assert load_config(str(tmp_path / "vjepa2-local")).hidden_size == 128


def test_unknown_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown .*not a preset"):
        load_config("huge-preset-that-does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a save_pretrained folder"):
        load_config(str(tmp_path / "empty"))


def test_the_pretrained_preset_loads_its_shipped_weights() -> None:
    """`tiny-jepa`: the tiny architecture with the encoder, predictor and pooler of its safetensors file
    (checked by sha256); `scratch` (random_init) of it is the tiny architecture from random weights."""
    shipped = shipped_weights("tiny-jepa")
    model = load_model("tiny-jepa", LABELS, seed=2)
    state = model.state_dict()
    assert set(shipped) == set(state) - {"classifier.weight", "classifier.bias"}
    assert all(torch.equal(state[key], value) for key, value in shipped.items())
    tiny = load_model("tiny", LABELS)
    assert model.config.hidden_size == tiny.config.hidden_size and base_fingerprint(model) != base_fingerprint(tiny)
    scratch = load_model("tiny-jepa", LABELS, random_init=True)
    assert not torch.equal(scratch.vjepa2.encoder.embeddings.patch_embeddings.proj.weight,
                           shipped["vjepa2.encoder.embeddings.patch_embeddings.proj.weight"])


def test_a_tampered_preset_file_is_refused(tmp_path: Path) -> None:
    for suffix in (".safetensors", ".json"):
        shutil.copy(preset_file("tiny-jepa", suffix), tmp_path)
    assert shipped_weights("tiny-jepa", folder=tmp_path).keys() == shipped_weights("tiny-jepa").keys()
    weights = tmp_path / "tiny-jepa.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"tiny-jepa: .* has sha256 .* not the .* its manifest records; reinstall"):
        shipped_weights("tiny-jepa", folder=tmp_path)
    (tmp_path / "tiny-jepa.json").unlink()
    with pytest.raises(UserError, match="its weights are not installed"):
        shipped_weights("tiny-jepa", folder=tmp_path)
