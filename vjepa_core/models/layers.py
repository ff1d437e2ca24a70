"""Which encoder layers feed the pooler, and how deep the pooler is: the official probe recipe (Diving-48,
Jester: blocks 17, 19, 21, 23 of ViT-L, and `num_probe_blocks`).

With feature layers, the encoder returns as its `last_hidden_state` each chosen block's tokens [B, N, D], through
the encoder's final LayerNorm, concatenated -> [B, len(layers) * N, D]. The width stays D and the pooler reads
its input as a set, so a pretrained pooler still fits. Forward hooks do it, so that every caller of the model
(training, the token cache, predict, the demo) sees the same tokens.

V-JEPA 2.1 has no shared final norm: a LayerNorm ends each of its four levels (ViT-L: blocks 5, 11, 17, 23), so its
feature layers are levels, each through its own norm, as Meta's 2.1 code returns them; its own output, the last
level, is what Meta's 2.1 classifier recipe probes, and the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import VJEPA2ForVideoClassification
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2AttentivePooler

from vjepa_core.errors import UserError
from vjepa_core.models.device import fork_rng


def resolve_layers(layers: Sequence[int], num_layers: int, *, levels: Sequence[int] | None = None
                   ) -> tuple[int, ...]:
    """Block indices as sorted non-negative ints; () (the model's own output) for () or the last block.

    `levels`: the blocks that end a V-JEPA 2.1 level (the only ones it has a norm for); None for V-JEPA 2."""
    resolved = []
    for layer in layers:
        if not -num_layers <= layer < num_layers:
            raise UserError(f"feature_layers: the encoder has {num_layers} layers (0..{num_layers - 1}, or "
                            f"-{num_layers}..-1 from the end), there is no layer {layer}")
        resolved.append(layer % num_layers)
    if len(set(resolved)) != len(resolved):
        raise UserError(f"feature_layers: {list(layers)} names one layer twice in a {num_layers}-layer encoder")
    resolved.sort()
    stray = [layer for layer in resolved if levels is not None and layer not in levels]
    if stray:
        raise UserError(f"feature_layers: this V-JEPA 2.1 encoder norms its tokens at the ends of its levels only, "
                        f"blocks {','.join(map(str, levels or ()))}; block {stray[0]} ends none")
    return () if resolved == [num_layers - 1] else tuple(resolved)


def encoder_levels(config: object) -> list[int] | None:
    """The blocks that end a V-JEPA 2.1 encoder's levels; None for a V-JEPA 2 encoder (one final norm)."""
    from vjepa_core.models.vjepa21 import field, is_vjepa21

    if not is_vjepa21(config):
        return None
    return list(field(config, "hierarchical_layers") or [config.num_hidden_layers - 1])


class _LayerTap:
    """Forward hooks: the chosen blocks' outputs are kept; the encoder returns them normed and concatenated.

    Hooks are bound methods, so `copy.deepcopy(model)` copies the tap with the model (the demo does)."""

    def __init__(self, layers: tuple[int, ...]) -> None:
        self.layers = layers
        self.kept: list[torch.Tensor] = []

    def start(self, module: torch.nn.Module, args: Any) -> None:
        self.kept = []  # a forward that raised half-way must not leave its blocks behind

    def keep(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.kept.append(output[0] if isinstance(output, tuple) else output)

    def combine(self, module: torch.nn.Module, args: Any, output: Any) -> Any:
        kept, self.kept = self.kept, []
        output.last_hidden_state = torch.cat([block_norm(module, layer)(tokens)
                                              for layer, tokens in zip(self.layers, kept, strict=True)], dim=1)
        return output


def block_norm(encoder: torch.nn.Module, layer: int) -> torch.nn.Module:
    """The norm a block's tokens go through: V-JEPA 2's one final norm, or the 2.1 level's own."""
    return encoder.level_norm(layer) if hasattr(encoder, "level_norm") else encoder.layernorm


def use_feature_layers(model: VJEPA2ForVideoClassification, layers: Sequence[int]) -> tuple[int, ...]:
    """Make `model`'s encoder output the tokens of `layers` (0-based blocks, negative from the end), each through
    its norm (`block_norm`) and concatenated along the tokens; returns them resolved. The last block alone is the
    model's own output and installs no hooks."""
    encoder = model.vjepa2.encoder
    if feature_layers(model):
        raise ValueError("this model's feature layers are already set")
    resolved = resolve_layers(layers, len(encoder.layer), levels=encoder_levels(model.config))
    if not resolved:
        return resolved
    tap = _LayerTap(resolved)
    encoder.register_forward_pre_hook(tap.start)
    for index in resolved:
        encoder.layer[index].register_forward_hook(tap.keep)
    encoder.register_forward_hook(tap.combine)
    encoder.feature_tap = tap
    return resolved


def feature_layers(model: VJEPA2ForVideoClassification) -> tuple[int, ...]:
    """The blocks `model`'s encoder output is made of; () for its own last-layer output."""
    tap = getattr(model.vjepa2.encoder, "feature_tap", None)
    return tap.layers if tap is not None else ()


def set_pooler_layers(model: VJEPA2ForVideoClassification, layers: int, *, seed: int) -> None:
    """Replace the pooler with a fresh one of `layers` self-attention layers, initialised from `seed`."""
    old = next(model.pooler.parameters())
    model.config.num_pooler_layers = layers
    with fork_rng(seed):
        pooler = VJEPA2AttentivePooler(model.config)
        pooler.apply(model._init_weights)
    model.pooler = pooler.to(device=old.device, dtype=old.dtype)
