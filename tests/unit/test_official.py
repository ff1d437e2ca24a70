"""Meta's checkpoints load into our classes and give Meta's tokens (tests/fixtures/official, made by Meta's code).

The fixtures hold small random V-JEPA 2 and 2.1 encoders in the checkpoint format Meta's training writes, an
input, and the tokens Meta's own forward returned (benchmarks/official_fixtures.py; docs/guides/models.md).
Every key (ema_encoder, target_encoder, encoder) and prefix form (module., backbone., both, none) must give
those tokens within 1e-5 in fp32; a file that is not a V-JEPA checkpoint, or has missing, extra or misshapen
encoder tensors, is one line naming them, and nothing loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from vjepa_core.errors import UserError
from vjepa_core.models import official
from vjepa_core.models.loading import load_config, load_model
from vjepa_core.models.vjepa21 import VJEPA21ForVideoClassification, VJEPA21Model

FIXTURES = Path(__file__).parents[1] / "fixtures" / "official"
MANIFEST = json.loads((FIXTURES / "fixtures.json").read_text())
TOLERANCE = 1e-5
PREFIXES = ("module.backbone.", "backbone.", "module.", "")


def overrides(name: str) -> dict:
    """What the fixtures' shapes cannot say: their heads and crop (Meta's constructor arguments)."""
    constructor = MANIFEST[name]["constructor"]
    return {"num_attention_heads": constructor["num_heads"], "crop_size": constructor["img_size"][0]}


def meta_checkpoint(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def encoder_state(name: str) -> dict[str, torch.Tensor]:
    checkpoint = meta_checkpoint(name)
    return {key.removeprefix(MANIFEST[name]["prefix"]): value
            for key, value in checkpoint[MANIFEST[name]["key"]].items()}


def max_delta(name: str, path: Path) -> dict[str, float]:
    """Each case's max |ours - Meta's| for the checkpoint at `path` (a fixture's weights in some form)."""
    config, weights = official.load_official(str(path), **overrides(name))
    model = VJEPA21Model(config).eval()
    model.encoder.load_state_dict(weights)
    tensors = load_file(FIXTURES / f"{name}.safetensors")
    deltas = {}
    for case in MANIFEST[name]["cases"]:
        pixels = tensors[case["input"]].permute(0, 2, 1, 3, 4)  # Meta's [B, C, T, H, W] -> [B, T, C, H, W]
        with torch.no_grad():
            out = model.encoder(pixels, return_hierarchical=case["hierarchical"])
        tokens = out.hierarchical_hidden_state if case["hierarchical"] else out.last_hidden_state
        expected = tensors[f"{case['case']}.tokens"]
        assert tokens.shape == expected.shape
        deltas[case["case"]] = float((tokens - expected).abs().max())
    return deltas


@pytest.mark.parametrize("name", list(MANIFEST))
@pytest.mark.parametrize("key", official.ENCODER_KEYS)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_key_and_prefix_gives_metas_tokens(tmp_path: Path, name: str, key: str, prefix: str) -> None:
    state = encoder_state(name)
    path = tmp_path / "checkpoint.pt"
    torch.save({key: {prefix + k: v for k, v in state.items()}, "epoch": 3}, path)
    deltas = max_delta(name, path)
    assert set(deltas) == {case["case"] for case in MANIFEST[name]["cases"]}
    assert max(deltas.values()) <= TOLERANCE, deltas


@pytest.mark.parametrize("name", list(MANIFEST))
def test_the_fixture_file_as_meta_wrote_it(name: str) -> None:
    assert max(max_delta(name, FIXTURES / f"{name}.pt").values()) <= TOLERANCE


def test_the_fixtures_tell_the_versions_apart(tmp_path: Path) -> None:
    """2.1's differences move the tokens far beyond the tolerance: the fixtures would catch a port without them."""
    tensors = load_file(FIXTURES / "vjepa2_1_distilled.safetensors")
    pixels = tensors["input.4"].permute(0, 2, 1, 3, 4)
    for change in ({"use_rope_interleave": False}, {"interpolate_rope": False}):
        config, weights = official.load_official(str(FIXTURES / "vjepa2_1_distilled.pt"),
                                                 **overrides("vjepa2_1_distilled"), **change)
        model = VJEPA21Model(config).eval()
        model.encoder.load_state_dict(weights)
        with torch.no_grad():
            tokens = model.encoder(pixels).last_hidden_state
        assert float((tokens - tensors["video.tokens"]).abs().max()) > 1e-3, change


def test_ema_encoder_is_preferred_to_target_and_context_encoders(tmp_path: Path) -> None:
    state = encoder_state("vjepa2_1_distilled")
    garbage = {key: torch.randn_like(value) for key, value in state.items()}
    path = tmp_path / "distillation.pt"
    torch.save({"encoder": garbage, "target_encoder": garbage, "ema_encoder": state}, path)
    assert max(max_delta("vjepa2_1_distilled", path).values()) <= TOLERANCE
    torch.save({"encoder": garbage, "target_encoder": encoder_state("vjepa2_1_distilled")}, path)
    assert max(max_delta("vjepa2_1_distilled", path).values()) <= TOLERANCE


def test_config_fields_are_named_as_the_transformers_port_names_them() -> None:
    config, _ = official.load_official(str(FIXTURES / "vjepa2_1_levels.pt"), **overrides("vjepa2_1_levels"))
    saved = config.to_dict()
    assert saved["model_type"] == "vjepa2"
    assert {key: saved[key] for key in ("use_rope_interleave", "interpolate_rope", "use_modality_embeddings",
                                        "use_image_patch_embedder", "hierarchical_layers",
                                        "num_distillation_outputs")} == {
        "use_rope_interleave": True, "interpolate_rope": True, "use_modality_embeddings": True,
        "use_image_patch_embedder": True, "hierarchical_layers": [2, 5, 8, 11], "num_distillation_outputs": 4}
    v20, _ = official.load_official(str(FIXTURES / "vjepa2_0.pt"), **overrides("vjepa2_0"))
    assert "hierarchical_layers" not in v20.to_dict()


def test_round_trip_through_metas_names_is_exact() -> None:
    config, weights = official.load_official(str(FIXTURES / "vjepa2_1_levels.pt"), **overrides("vjepa2_1_levels"))
    assert official.as_meta_state(weights).keys() == encoder_state("vjepa2_1_levels").keys()
    back = official.encoder_weights(official.as_meta_state(weights), config, source="round trip")
    assert all(torch.equal(back[key], weights[key]) for key in weights)


# ----- refusals: one line, naming what is wrong, and no model -----

def refusal(path: Path, **extra: object) -> str:
    with pytest.raises(UserError) as caught:
        official.load_official(str(path), **{**overrides("vjepa2_1_distilled"), **extra})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    assert "is not a V-JEPA checkpoint (not a file torch.save writes" in refusal(text)
    other = tmp_path / "resnet.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "epoch": 1}, other)
    message = refusal(other)
    assert "none of ema_encoder, target_encoder, encoder" in message and "state_dict" in message


def test_missing_and_extra_encoder_keys_are_named(tmp_path: Path) -> None:
    state = encoder_state("vjepa2_1_distilled")
    del state["blocks.7.mlp.fc2.weight"]
    state["blocks.3.attn.rel_pos_h"] = torch.zeros(3)
    path = tmp_path / "edited.pt"
    torch.save({"ema_encoder": state}, path)
    message = refusal(path)
    assert "lacks 1 key(s)" in message and "blocks.7.mlp.fc2.weight" in message
    assert "has 1 it does not use: blocks.3.attn.rel_pos_h" in message


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path: Path) -> None:
    state = encoder_state("vjepa2_1_distilled")
    state["blocks.2.mlp.fc1.weight"] = torch.zeros(48, 32)
    path = tmp_path / "misshapen.pt"
    torch.save({"ema_encoder": state}, path)
    message = refusal(path)
    assert "blocks.2.mlp.fc1.weight (48, 32) where (64, 32) is expected" in message


def test_pickled_objects_are_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "objects.pt"
    torch.save({"target_encoder": encoder_state("vjepa2_0"), "args": Path("x")}, path)
    assert "holds Python objects (pathlib.PosixPath)" in refusal(path)


def test_an_unreleased_width_needs_its_heads_said(tmp_path: Path) -> None:
    path = tmp_path / "custom.pt"
    torch.save({"target_encoder": encoder_state("vjepa2_0")}, path)
    with pytest.raises(UserError, match="width-32 encoder.*params-pretrain.yaml"):
        load_config(str(path))


# ----- a user's own pretraining, with the params Meta's training writes beside it -----

def own_pretraining(folder: Path) -> VJEPA21Model:
    """A 192-wide V-JEPA 2 encoder (Meta's vit_tiny: 3 heads) saved in `folder` as Meta's training saves it,
    with the params-pretrain.yaml it writes beside; returns the model whose weights it holds."""
    config = load_config("tiny")
    config.hidden_size, config.num_attention_heads, config.crop_size = 192, 3, 32
    with torch.random.fork_rng():
        torch.manual_seed(3)
        reference = VJEPA21Model(config).eval()
    folder.mkdir()
    meta = official.as_meta_state(reference.encoder.state_dict())
    torch.save({"encoder": meta, "target_encoder": {f"module.backbone.{k}": v for k, v in meta.items()},
                "epoch": 10, "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}},
               folder / "latest.pt")
    (folder / "params-pretrain.yaml").write_text(yaml.safe_dump(
        {"model": {"model_name": "vit_tiny"}, "data": {"crop_size": 32, "patch_size": 16}}))
    return reference


def test_own_pretraining_loads_through_load_model_with_its_params_file(tmp_path: Path) -> None:
    reference = own_pretraining(tmp_path / "run")
    loaded = load_model(str(tmp_path / "run" / "latest.pt"), ["a", "b"])
    assert loaded.config.num_attention_heads == 3 and loaded.config.crop_size == 32
    pixels = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        expected = reference.encoder(pixels).last_hidden_state
        got = loaded.vjepa2.encoder(pixels).last_hidden_state
    assert torch.equal(got, expected)


def test_nothing_half_loaded_runs_through_load_model(tmp_path: Path) -> None:
    own_pretraining(tmp_path / "run")
    path = tmp_path / "run" / "latest.pt"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["target_encoder"]["module.backbone.norm.weight"]
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match=r"lacks 1 key\(s\) the V-JEPA 2 192-wide 2-block architecture needs: "
                                        r"norm\.weight$"):
        load_model(str(path), ["a", "b"])


# ----- the named V-JEPA 2.1 files: the torch hub cache, a download, offline -----

def test_offline_a_missing_file_says_which_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as caught:
        load_model("vjepa2_1_vit_large_384", ["a", "b"])
    message = str(caught.value)
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "vjepa2_1_vitl_dist_vitG_384.pt"
    assert "vjepa2_1_vitl_dist_vitG_384.pt is not in the torch hub cache" in message
    assert "https://dl.fbaipublicfiles.com/vjepa2/vjepa2_1_vitl_dist_vitG_384.pt" in message
    assert str(cache) in message and "\n" not in message


def test_a_named_file_downloads_into_the_cache_and_is_checked(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror (file:// here) stands in for Meta's server; a file of another shape than its name is refused."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "vjepa2_1_vitb_dist_vitG_384.pt").write_bytes((FIXTURES / "vjepa2_1_distilled.pt").read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(official.URL_VARIABLE, mirror.as_uri())
    with pytest.raises(UserError, match=r"wrong shape for the V-JEPA 2\.1 768-wide 12-block architecture"):
        load_model("vjepa2_1_vit_base_384", ["a", "b"])
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "vjepa2_1_vitb_dist_vitG_384.pt"
    assert cached.read_bytes() == (FIXTURES / "vjepa2_1_distilled.pt").read_bytes()


def test_named_configs_match_metas_architectures() -> None:
    shapes = {name: (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.hierarchical_layers,
                     c.num_distillation_outputs, c.crop_size)
              for name in official.OFFICIAL for c in [load_config(name)]}
    assert shapes == {
        "vjepa2_1_vit_base_384": (768, 12, 12, [2, 5, 8, 11], 1, 384),
        "vjepa2_1_vit_large_384": (1024, 24, 16, [5, 11, 17, 23], 1, 384),
        "vjepa2_1_vit_giant_384": (1408, 40, 22, [9, 19, 29, 39], 4, 384),
        "vjepa2_1_vit_gigantic_384": (1664, 48, 26, [11, 23, 37, 47], 4, 384),
    }
    with torch.device("meta"):
        model = VJEPA21ForVideoClassification(load_config("vjepa2_1_vit_large_384"))
    encoder = sum(p.numel() for p in model.vjepa2.encoder.parameters())
    assert 300e6 < encoder < 310e6  # Meta's "300M"
