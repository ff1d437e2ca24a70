"""The official probe recipe on the transformers model: tokens from several encoder blocks, a settable pooler depth."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from vjepa_core.errors import UserError
from vjepa_core.models import (
    base_fingerprint,
    encoder_fingerprint,
    feature_layers,
    load_model,
    resolve_layers,
    weights_fingerprint,
)
from vjepa_core.spec import RunSpec, unused_options
from vjepa_core.strategies import get_strategy

LABELS = ["up", "down"]
CLIPS = torch.randn(2, 8, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # 4 x 4 x 4 = 64 tokens


@torch.no_grad()
def blocks(model: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    """Each encoder block's output (transformers' own recording: hidden_states[i + 1] follows block i)."""
    return model.vjepa2(pixel_values_videos=CLIPS, skip_predictor=True, output_hidden_states=True).hidden_states[1:]


@torch.no_grad()
def encoder_output(model: torch.nn.Module) -> torch.Tensor:
    return model.vjepa2(pixel_values_videos=CLIPS, skip_predictor=True).last_hidden_state


def test_feature_layers_are_normed_blocks_concatenated_along_tokens() -> None:
    plain = load_model("tiny", LABELS)
    norm = plain.vjepa2.encoder.layernorm
    per_block = blocks(plain)
    model = load_model("tiny", LABELS, feature_layers=(-1, 0))
    assert feature_layers(model) == (0, 1)
    tokens = encoder_output(model)
    assert tokens.shape == (2, 2 * 64, 128)  # width unchanged: the pretrained pooler still fits
    with torch.no_grad():
        assert torch.equal(tokens[:, :64], norm(per_block[0])) and torch.equal(tokens[:, 64:], norm(per_block[1]))
        assert torch.equal(tokens[:, 64:], encoder_output(plain))  # the last block normed is the model's own output
        logits = model(pixel_values_videos=CLIPS).logits
        assert torch.allclose(logits, model.classifier(model.pooler(tokens)))


def test_the_last_block_alone_is_the_models_own_output() -> None:
    model = load_model("tiny", LABELS, feature_layers=(1,))
    assert feature_layers(model) == () and not model.vjepa2.encoder._forward_hooks
    assert resolve_layers((-1,), 24) == () and resolve_layers((23, 17, -3, 19), 24) == (17, 19, 21, 23)


@pytest.mark.parametrize(("layers", "message"), [((2,), "no layer 2"), ((-3,), "no layer -3"),
                                                 ((0, -2), "names one layer twice")])
def test_layers_the_encoder_lacks_are_one_clear_error(layers: tuple[int, ...], message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_model("tiny", LABELS, feature_layers=layers)


def test_a_copied_model_has_its_own_working_layer_tap() -> None:
    """The demo deep-copies its base model per checkpoint: the copy must not feed the original's hooks."""
    model = load_model("tiny", LABELS, feature_layers=(0, 1))
    twin = copy.deepcopy(model)
    assert twin.vjepa2.encoder.feature_tap is not model.vjepa2.encoder.feature_tap
    with torch.no_grad():
        twin.vjepa2.encoder.layernorm.weight.mul_(2.0)  # the copy's norm, not the original's, must apply
    assert torch.allclose(encoder_output(twin), 2 * encoder_output(model) - twin.vjepa2.encoder.layernorm.bias,
                          atol=1e-5)


def test_pooler_depth_is_a_fresh_pooler_on_the_same_encoder(tmp_path: Path) -> None:
    plain = load_model("tiny", LABELS, seed=0)
    deep = load_model("tiny", LABELS, seed=0, pooler_layers=3)
    assert len(deep.pooler.self_attention_layers) == 3 == deep.config.num_pooler_layers
    assert encoder_fingerprint(deep) == encoder_fingerprint(plain)  # the token cache is shared
    assert base_fingerprint(deep) == base_fingerprint(load_model("tiny", LABELS, seed=0, pooler_layers=3))
    assert weights_fingerprint(load_model("tiny", LABELS, seed=1, pooler_layers=3).pooler) != weights_fingerprint(
        deep.pooler)  # a new part: it follows the run seed
    same = load_model("tiny", LABELS, seed=0, pooler_layers=1)  # the preset's own depth keeps its pooler
    assert weights_fingerprint(same.pooler) == weights_fingerprint(plain.pooler)
    assert deep(pixel_values_videos=CLIPS).logits.shape == (2, 2)
    # A save_pretrained checkpoint: its own depth keeps its pretrained pooler, another one starts afresh.
    load_model("tiny", ["a", "b", "c"], pooler_layers=2).save_pretrained(tmp_path / "local")
    kept = load_model(str(tmp_path / "local"), LABELS, pooler_layers=2)
    assert weights_fingerprint(kept.pooler) == weights_fingerprint(load_model("tiny", LABELS, pooler_layers=2).pooler)
    assert len(load_model(str(tmp_path / "local"), LABELS, pooler_layers=0).pooler.self_attention_layers) == 0


def test_spec_fields_reach_the_model_and_only_where_they_are_read() -> None:
    spec = RunSpec.from_dict({"strategy": "pooler_head", "feature_layers": "0,-1", "pooler_layers": "2"})
    assert spec.feature_layers == (-1, 0) and spec.pooler_layers == 2
    assert spec.run_id != RunSpec(strategy="pooler_head").run_id
    from vjepa_core.models import load_run_model

    model = load_run_model(spec, LABELS)
    assert feature_layers(model) == (0, 1) and model.config.num_pooler_layers == 2
    head = RunSpec(strategy="head", pooler_layers=2)  # head trains no pooler weight: the option is reset
    assert head.pooler_layers is None and head.run_id == RunSpec(strategy="head").run_id
    assert "pooler_layers" in unused_options(get_strategy("lora"))


def test_embeddings_of_other_feature_layers_are_told_apart() -> None:
    """`runner embed` keys vectors by what made them: the tokens of other blocks make other vectors."""
    from vjepa_core.data.clips import ClipConfig
    from vjepa_core.inference.embeddings import embedding_fingerprint

    clip_cfg = ClipConfig(8, 2, 64)
    plain = embedding_fingerprint(load_model("tiny", LABELS), "pooler", clip_cfg)
    assert embedding_fingerprint(load_model("tiny", LABELS, feature_layers=(-1,)), "pooler", clip_cfg) == plain
    assert embedding_fingerprint(load_model("tiny", LABELS, feature_layers=(0, 1)), "pooler", clip_cfg) != plain
