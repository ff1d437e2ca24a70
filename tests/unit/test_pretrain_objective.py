"""Masked latent prediction: masks that hide what they say, a context encoder that sees only the context."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import VJEPA2Config, VJEPA2Model

from vjepa_core.errors import UserError
from vjepa_core.pretrain.masks import (
    DEFAULT_MASKS,
    BlockMask,
    check_masks,
    expected_masked,
    parse_masks,
    sample_masks,
    token_grid,
)
from vjepa_core.pretrain.objective import (
    ema_momentum,
    ema_update,
    encode_context,
    encode_targets,
    gather_tokens,
    jepa_loss,
    make_target_encoder,
    predict_targets,
)

GRID = (4, 8, 8)  # 8 frames / tubelet 2, 32 px crop / patch 4


def _model(seed: int = 0) -> VJEPA2Model:
    config = VJEPA2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=1, crop_size=32, patch_size=4,
                          tubelet_size=2, frames_per_clip=8, pred_hidden_size=32, pred_num_attention_heads=1,
                          pred_num_hidden_layers=1, num_pooler_layers=1)
    torch.manual_seed(seed)
    return VJEPA2Model(config).eval()


def _pixels(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 8, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _token_pixels(pixels: torch.Tensor, tokens: torch.Tensor) -> list[tuple[slice, slice, slice]]:
    """The (frames, rows, cols) slices of pixel space that tokens (flat indices in GRID) are made of."""
    frames, height, width = GRID
    boxes = []
    for token in tokens.tolist():
        t, rest = divmod(token, height * width)
        y, x = divmod(rest, width)
        boxes.append((slice(2 * t, 2 * t + 2), slice(4 * y, 4 * y + 4), slice(4 * x, 4 * x + 4)))
    return boxes


def test_masks_partition_the_grid_into_context_and_target() -> None:
    rng = np.random.default_rng(0)
    pairs = sample_masks(DEFAULT_MASKS, GRID, 5, rng)
    assert len(pairs) == len(DEFAULT_MASKS)
    total = int(np.prod(GRID))
    for context, target in pairs:
        assert context.shape[0] == target.shape[0] == 5 and context.dtype == torch.int64
        for row_c, row_t in zip(context, target, strict=True):
            assert not set(row_c.tolist()) & set(row_t.tolist())
            assert row_c.tolist() == sorted(row_c.tolist()) and 0 < len(row_c) < total
            assert row_t.max() < total


def test_blocks_span_all_of_time_so_masked_regions_are_tubes() -> None:
    """A token hidden at one time step is hidden at every time step: no peeking at another moment."""
    rng = np.random.default_rng(1)
    frames, height, width = GRID
    for context, _ in sample_masks([BlockMask(3, 0.2)], GRID, 4, rng):
        for row in context:
            visible = np.zeros(GRID, dtype=bool).reshape(-1)
            visible[row.numpy()] = True
            visible = visible.reshape(GRID)
            # Trimming may hide a few more context tokens, but never shows a hidden tube.
            assert (visible <= visible.any(0, keepdims=True)).all()


def test_default_masks_hide_most_tokens_on_an_8x8_grid() -> None:
    shares = [expected_masked(mask, (8, 8, 8)) for mask in DEFAULT_MASKS]
    assert 0.6 < shares[0] < shares[1] < 0.95


@pytest.mark.parametrize(("text", "grid", "message"), [
    ("8x1.0", (8, 4, 4), "leaving the context encoder nothing"),
    ("2x0.01", (8, 4, 4), "covers no token"),
    ("0x0.2", (8, 8, 8), "at least 1 block"),
    ("3x1.5", (8, 8, 8), "spatial scale"),
    ("8", (8, 8, 8), "cannot read"),
    ("ax0.1", (8, 8, 8), "cannot read"),
])
def test_impossible_masks_are_user_errors(text: str, grid: tuple[int, int, int], message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_masks(parse_masks(text), grid)


def test_token_grid_of_a_config() -> None:
    assert token_grid(16, tubelet_size=2, crop_size=64, patch_size=8) == (8, 8, 8)
    assert token_grid(16, tubelet_size=2, crop_size=64, patch_size=16) == (8, 4, 4)


def test_context_encoding_of_all_tokens_is_the_encoders_own_forward() -> None:
    model, pixels = _model(), _pixels()
    everything = torch.arange(int(np.prod(GRID))).repeat(2, 1)
    full = model.encoder(pixel_values_videos=pixels).last_hidden_state
    assert torch.allclose(encode_context(model.encoder, pixels, everything), full, atol=1e-5)


def test_context_encoder_never_sees_the_masked_pixels() -> None:
    model, pixels = _model(), _pixels()
    (context, target), = sample_masks([BlockMask(4, 0.25)], GRID, 2, np.random.default_rng(0))
    before = encode_context(model.encoder, pixels, context)
    changed = pixels.clone()
    for b in range(2):
        for frames, rows, cols in _token_pixels(pixels, target[b]):
            changed[b, frames, :, rows, cols] = torch.randn_like(changed[b, frames, :, rows, cols]) * 5
    assert not torch.equal(changed, pixels)
    assert torch.allclose(encode_context(model.encoder, changed, context), before, atol=1e-6)
    # The full encoder does see them: that is what would make the task trivial.
    full_before = gather_tokens(model.encoder(pixel_values_videos=pixels).last_hidden_state, context)
    full_after = gather_tokens(model.encoder(pixel_values_videos=changed).last_hidden_state, context)
    assert (full_after - full_before).abs().max() > 1e-2


def test_context_outputs_do_change_with_the_context_pixels() -> None:
    model, pixels = _model(), _pixels()
    (context, _), = sample_masks([BlockMask(4, 0.25)], GRID, 2, np.random.default_rng(0))
    before = encode_context(model.encoder, pixels, context)
    changed = pixels.clone()
    frames, rows, cols = _token_pixels(pixels, context[0][:1])[0]
    changed[0, frames, :, rows, cols] += 3.0
    after = encode_context(model.encoder, changed, context)
    assert (after[0] - before[0]).abs().max() > 1e-2  # one context token's pixels move every output (attention)
    assert torch.allclose(after[1], before[1], atol=1e-6)  # and nothing in another clip


def test_rotary_positions_follow_the_token_indices() -> None:
    """The same tokens at other grid positions encode differently: positions come from the indices."""
    model, pixels = _model(), _pixels(1)
    with torch.no_grad():  # sharper attention than at init, where it is nearly uniform whatever the positions
        for layer in model.encoder.layer:
            layer.attention.query.weight.mul_(20)
            layer.attention.key.weight.mul_(20)
    tokens = model.encoder.embeddings(pixels)[:, :10]
    here, there = torch.arange(10)[None], torch.arange(100, 110)[None]
    outputs = []
    for index in (here, there):
        hidden = tokens
        for layer in model.encoder.layer:
            hidden = layer(hidden, index)[0]
        outputs.append(hidden)
    assert (outputs[0] - outputs[1]).abs().max() > 1e-2


def test_targets_are_layer_normed_and_carry_no_gradient() -> None:
    model = _model()
    target = make_target_encoder(model)
    tokens = encode_targets(target, _pixels())
    assert tokens.shape == (2, int(np.prod(GRID)), 64) and not tokens.requires_grad
    assert torch.allclose(tokens.mean(-1), torch.zeros(2, tokens.shape[1]), atol=1e-4)
    assert all(not p.requires_grad for p in target.parameters())


def test_predictor_fills_every_target_position() -> None:
    model, pixels = _model(), _pixels()
    (context, target), = sample_masks([BlockMask(4, 0.25)], GRID, 2, np.random.default_rng(0))
    predicted = predict_targets(model, encode_context(model.encoder, pixels, context), context, target,
                                int(np.prod(GRID)))
    assert predicted.shape == (2, target.shape[1], 64)


def test_loss_trains_encoder_and_predictor_but_not_the_target() -> None:
    model = _model().train()
    target = make_target_encoder(model)
    frozen = {k: v.clone() for k, v in target.state_dict().items()}
    masks = sample_masks(DEFAULT_MASKS, GRID, 2, np.random.default_rng(0))
    loss = jepa_loss(model, target, _pixels(), masks)
    loss.backward()
    assert loss.item() > 0
    assert model.encoder.layer[0].attention.query.weight.grad.abs().sum() > 0
    assert model.predictor.proj.weight.grad.abs().sum() > 0
    assert all(torch.equal(frozen[k], v) for k, v in target.state_dict().items())


def test_ema_moves_the_target_towards_the_online_encoder() -> None:
    online, other = _model(0), _model(1)
    target = make_target_encoder(other)
    name = "layer.0.attention.query.weight"
    start = target.state_dict()[name].clone()
    ema_update(target, online.encoder, 0.75)
    expected = 0.75 * start + 0.25 * online.encoder.state_dict()[name]
    assert torch.allclose(target.state_dict()[name], expected, atol=1e-6)
    assert ema_momentum(0, 100, start=0.99, end=1.0) == 0.99
    assert ema_momentum(50, 100, start=0.99, end=1.0) == pytest.approx(0.995)
    assert ema_momentum(200, 100, start=0.99, end=1.0) == 1.0
