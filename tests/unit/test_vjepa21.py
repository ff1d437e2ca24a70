"""V-JEPA 2.1 in the lab: the tiny-2.1 preset, every strategy on it, and its feature layers (its four levels)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vjepa_core.errors import UserError
from vjepa_core.models import count_parameters, load_model
from vjepa_core.models.layers import feature_layers
from vjepa_core.models.loading import check_run_model, load_config
from vjepa_core.models.vjepa21 import VJEPA21ForVideoClassification, is_vjepa21
from vjepa_core.spec import RunSpec
from vjepa_core.strategies import get_strategy

PRESET = "tiny-2.1"
LABELS = ["a", "b", "c"]
CLIPS = torch.randn(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def adapted(strategy: str, **spec: object) -> tuple[torch.nn.Module, set[str]]:
    s = get_strategy(strategy)
    model = s.adapt(load_model(PRESET, LABELS, random_init=s.random_init), RunSpec(strategy=strategy, model=PRESET,
                                                                                  **spec))
    return model, {n for n, p in model.named_parameters() if p.requires_grad}


def test_the_preset_is_a_small_21_shaped_model() -> None:
    model = load_model(PRESET, LABELS)
    assert isinstance(model, VJEPA21ForVideoClassification) and is_vjepa21(model.config)
    config = model.config
    assert (config.use_rope_interleave, config.interpolate_rope, config.use_modality_embeddings,
            config.use_image_patch_embedder, config.hierarchical_layers) == (True, True, True, True, [0, 1, 2, 3])
    encoder = model.vjepa2.encoder
    assert len(encoder.hierarchical_norms) == 4 and not hasattr(encoder, "layernorm")
    assert model.vjepa2.predictor is None
    assert count_parameters(model)[1] < 2_000_000  # tests stay fast
    again = load_model(PRESET, LABELS)
    assert all(torch.equal(a, b) for a, b in zip(model.vjepa2.state_dict().values(),
                                                 again.vjepa2.state_dict().values(), strict=True))


def test_video_and_one_frame_image_inputs() -> None:
    model = load_model(PRESET, LABELS)
    with torch.no_grad():
        video = model.vjepa2(pixel_values_videos=CLIPS, skip_predictor=True).last_hidden_state
        image = model.vjepa2(pixel_values_videos=CLIPS[:, :1], skip_predictor=True).last_hidden_state
        levels = model.vjepa2.encoder(CLIPS, return_hierarchical=True).hierarchical_hidden_state
    assert video.shape == (2, 2 * 16, 128) and image.shape == (2, 16, 128)
    assert levels.shape == (2, 32, 128)  # the preset keeps one distillation output, like the released ViT-B/L
    with pytest.raises(ValueError, match="skip_predictor=True"):
        model.vjepa2(pixel_values_videos=CLIPS)
    with pytest.raises(ValueError, match="takes 64 x 64 frames, got 32 x 32"):
        model.vjepa2(pixel_values_videos=CLIPS[..., :32, :32], skip_predictor=True)


def test_lora_finds_its_targets_on_the_21_blocks() -> None:
    _, names = adapted("lora_backbone", lora_mlp=True)
    modules = {re.sub(r"\.lora_[AB]\.default\.weight$", "", n) for n in names if ".lora_" in n}
    encoder = {m for m in modules if m.startswith("vjepa2.encoder.")}
    assert encoder == {f"vjepa2.encoder.layer.{i}.{part}" for i in range(4)
                       for part in ("attention.query", "attention.key", "attention.value", "attention.proj",
                                    "mlp.fc1", "mlp.fc2")}
    _, names = adapted("lora")
    assert {n.split(".")[0] for n in names if ".lora_" in n} == {"pooler"}


def test_scratch_is_the_21_architecture_from_random_init() -> None:
    pretrained, scratch = load_model(PRESET, LABELS), load_model(PRESET, LABELS, random_init=True, seed=5)
    assert isinstance(scratch, VJEPA21ForVideoClassification)
    assert pretrained.vjepa2.state_dict().keys() == scratch.vjepa2.state_dict().keys()
    weight = "encoder.layer.0.attention.query.weight"
    assert not torch.equal(pretrained.vjepa2.state_dict()[weight], scratch.vjepa2.state_dict()[weight])


def test_feature_layers_are_the_levels_each_with_its_own_norm() -> None:
    model = load_model(PRESET, LABELS, feature_layers=(1, 3))
    assert feature_layers(model) == (1, 3)
    encoder = model.vjepa2.encoder
    blocks = []
    encoder.layer[1].register_forward_hook(lambda m, a, out: blocks.append(out[0]))
    with torch.no_grad():
        tokens = model.vjepa2(pixel_values_videos=CLIPS, skip_predictor=True).last_hidden_state
        last = load_model(PRESET, LABELS).vjepa2(pixel_values_videos=CLIPS, skip_predictor=True).last_hidden_state
    assert tokens.shape == (2, 64, 128)
    torch.testing.assert_close(tokens[:, :32], encoder.level_norm(1)(blocks[0]), rtol=0, atol=0)
    torch.testing.assert_close(tokens[:, 32:], last, rtol=0, atol=0)  # level 4 = the model's own output


def test_the_default_is_the_last_level_as_metas_21_probe_reads() -> None:
    model = load_model(PRESET, LABELS, feature_layers=(-1,))
    assert feature_layers(model) == ()  # the model's own output: the last level, normed


def test_a_block_that_ends_no_level_is_refused_in_one_line(tmp_path: Path) -> None:
    config = load_config(PRESET)
    config.num_hidden_layers, config.hierarchical_layers = 8, [1, 3, 5, 7]
    config.save_pretrained(tmp_path)
    with pytest.raises(UserError, match=r"ends of its levels only, blocks 1,3,5,7; block 2 ends none"):
        check_run_model(RunSpec(model=str(tmp_path), feature_layers=(2, 7)))  # before any weights are read
