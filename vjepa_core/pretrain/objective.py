"""V-JEPA's masked latent prediction on transformers' `VJEPA2Model` (encoder + predictor).

`VJEPA2Model.forward` masks the encoder's outputs only, after every output has attended to the masked tokens,
which makes the prediction trivial. Here the context encoder sees only the context tokens (gathered after the
patch embedding, with their rotary positions in the full grid), an EMA target encoder sees the whole clip,
and the loss is the L1 between the predictor's outputs and the targets. Pixels [B, T, 3, crop, crop], token
indices [B, N*] int64, embeddings [B, N*, D].
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import VJEPA2Model
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

MaskPair = tuple[torch.Tensor, torch.Tensor]  # context [B, Nc], target [B, Nt]


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tokens [B, N, D], index [B, K] -> [B, K, D]."""
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.size(-1)))


def encode_context(encoder: VJEPA2Encoder, pixels: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """The encoder on the context tokens only: [B, Nc, D]; masked pixels never reach it."""
    context = context.to(pixels.device)
    tokens = gather_tokens(encoder.embeddings(pixels), context)
    for layer in encoder.layer:
        tokens = layer(tokens, context)[0]  # position_mask: rotary positions of these tokens in the full grid
    return encoder.layernorm(tokens)


@torch.no_grad()
def encode_targets(target_encoder: VJEPA2Encoder, pixels: torch.Tensor) -> torch.Tensor:
    """The target encoder on the whole clip, layer-normed without affine parameters: [B, N, D]."""
    tokens = target_encoder(pixel_values_videos=pixels).last_hidden_state
    return F.layer_norm(tokens, (tokens.size(-1),))


def predict_targets(model: VJEPA2Model, context_tokens: torch.Tensor, context: torch.Tensor,
                    target: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """The model's predictor filling the target positions from the context: [B, Nt, D]."""
    # transformers' predictor gathers the context from a full-length sequence itself: scatter ours into one.
    batch, _, dim = context_tokens.shape
    full = context_tokens.new_zeros(batch, num_tokens, dim)
    full = full.scatter(1, context.unsqueeze(-1).expand(-1, -1, dim), context_tokens)
    out = model.predictor(encoder_hidden_states=full, context_mask=[context], target_mask=[target])
    return out.last_hidden_state


def jepa_loss(model: VJEPA2Model, target_encoder: VJEPA2Encoder, pixels: torch.Tensor,
              masks: Sequence[MaskPair]) -> torch.Tensor:
    """Mean L1 distance between predicted and target embeddings at the target positions, over all masks."""
    targets = encode_targets(target_encoder, pixels)
    losses = []
    for context, target in masks:
        context, target = context.to(pixels.device), target.to(pixels.device)
        context_tokens = encode_context(model.encoder, pixels, context)
        predicted = predict_targets(model, context_tokens, context, target, targets.size(1))
        losses.append((predicted - gather_tokens(targets, target)).abs().mean())
    return torch.stack(losses).mean()


def make_target_encoder(model: VJEPA2Model) -> VJEPA2Encoder:
    """A frozen copy of the encoder that only ever moves by `ema_update`."""
    target = copy.deepcopy(model.encoder)
    target.requires_grad_(False)
    return target.eval()


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    target_params = list(target.parameters())
    online_params = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(target_params, online_params, 1.0 - momentum)


def ema_momentum(step: int, total_steps: int, *, start: float, end: float) -> float:
    """Linear from `start` to `end` over training (V-JEPA's schedule; start == end is a constant)."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))
