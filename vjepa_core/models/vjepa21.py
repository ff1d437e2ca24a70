"""V-JEPA 2.1 in transformers' V-JEPA 2 classes: the four places where its encoder differs, and nothing else.

V-JEPA 2.1 (Meta, 2026) keeps V-JEPA 2's encoder blocks and changes
- RoPE: the sine/cosine of each rotated pair are interleaved (`use_rope_interleave`), where V-JEPA 2 repeats
  them; and height/width positions are rescaled to the 16 x 16 pretraining grid (`interpolate_rope`), so that
  at 384 px (24 x 24 patches) they are fractional;
- embeddings: a learnt video or image modality vector is added to every token (`use_modality_embeddings`),
  and one-frame inputs go through their own patch embedding of tubelet 1 (`use_image_patch_embedder`);
- norms: a LayerNorm after each of four blocks (`hierarchical_layers`, ViT-L: 5, 11, 17, 23) instead of one
  final norm. The encoder returns the last level normed, [B, N, D]; `return_hierarchical=True` also returns
  the last `num_distillation_outputs` levels concatenated on the feature axis, [B, N, levels * D].

The config fields are named as transformers' pending V-JEPA 2.1 port names them, so a transformers that
carries 2.1 reads the same config.json. A config without them builds exactly transformers' V-JEPA 2 model.
`VJEPA21ForVideoClassification` is a `VJEPA2ForVideoClassification`; its `vjepa2` is a `VJEPA2Model`. 2.1's
predictor (teacher-width outputs, context projection) is not ported: a 2.1 model has no predictor.

This file imports torch and transformers only: a released V-JEPA 2.1 folder ships it as Hub remote code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import VJEPA2Config, VJEPA2ForVideoClassification, VJEPA2Model
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.vjepa2.modeling_vjepa2 import (
    VJEPA2MLP,
    VJEPA2AttentivePooler,
    VJEPA2DropPath,
    VJEPA2Embeddings,
    VJEPA2Encoder,
    VJEPA2Layer,
    VJEPA2PatchEmbeddings3D,
    VJEPA2Predictor,
    VJEPA2PreTrainedModel,
    VJEPA2RopeAttention,
)

try:  # transformers >= 5: initialisers that leave weights loaded from a checkpoint alone
    from transformers import initialization as init
except ImportError:  # pragma: no cover - older transformers
    from torch.nn import init

# The 2.1 fields and their values in a V-JEPA 2 config (where they are absent).
V21_DEFAULTS: dict[str, Any] = dict(use_rope_interleave=False, interpolate_rope=False, use_modality_embeddings=False,
                                    use_image_patch_embedder=False, hierarchical_layers=None,
                                    num_distillation_outputs=1)
# Meta's positions are rescaled to the grid V-JEPA 2.1 was pretrained at: 256 px with 16 px patches, 252 px with 14.
PRETRAINING_GRID = {16: 16, 14: 18}


def field(config: Any, name: str) -> Any:
    """A 2.1 field of `config` (a VJEPA2Config or its dict), its V-JEPA 2 value where absent."""
    value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
    return V21_DEFAULTS[name] if value is None else value


def is_vjepa21(config: Any) -> bool:
    """Whether `config` (a VJEPA2Config, or its dict) asks for any of V-JEPA 2.1's encoder changes."""
    return any(field(config, name) != default for name, default in V21_DEFAULTS.items()
               if name != "num_distillation_outputs")


def rotate_interleaved(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """RoPE on x [..., N, D] at positions pos [..., N]: pair (2i, 2i+1) turns by pos * 10000^(-2i/D)."""
    half = x.size(-1) // 2
    omega = 1.0 / 10000 ** (torch.arange(half, dtype=x.dtype, device=x.device) / half)
    angle = pos.unsqueeze(-1) * omega
    angle = torch.stack((angle, angle), dim=-1).flatten(-2)  # repeat_interleave(2, -1), in ops ONNX traces
    pairs = x.unflatten(-1, (-1, 2))
    turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * angle.cos() + turned * angle.sin()


class VJEPA21RopeAttention(VJEPA2RopeAttention):
    """V-JEPA 2's attention with 2.1's RoPE: interleaved pairs, positions on the pretraining grid."""

    def __init__(self, config: VJEPA2Config, hidden_size: int = 1024, num_attention_heads: int = 16) -> None:
        super().__init__(config, hidden_size, num_attention_heads)
        self.scale_hw = 1.0
        self.interleave = field(config, "use_rope_interleave")
        if field(config, "interpolate_rope"):
            if config.patch_size not in PRETRAINING_GRID or self.grid_size < 2:
                raise ValueError(f"interpolate_rope needs 14 or 16 px patches and a grid of 2 or more, got "
                                 f"{config.patch_size} px patches and a {self.grid_size}-patch grid")
            self.scale_hw = (PRETRAINING_GRID[config.patch_size] - 1) / (self.grid_size - 1)

    def get_position_ids(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        frames, heights, widths = super().get_position_ids(x, masks)
        return frames, heights * self.scale_hw, widths * self.scale_hw

    def apply_rotary_embeddings(self, qk: torch.Tensor, pos_ids: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if not self.interleave:
            return super().apply_rotary_embeddings(qk, pos_ids)
        parts, start = [], 0
        for pos, width in zip(pos_ids, (self.d_dim, self.h_dim, self.w_dim), strict=True):
            parts.append(rotate_interleaved(qk[..., start:start + width], pos))
            start += width
        return torch.cat([*parts, qk[..., start:]], dim=-1)


class VJEPA21Embeddings(VJEPA2Embeddings):
    """Patch embeddings [B, T, C, H, W] -> [B, N, D], plus 2.1's modality vector and one-frame path."""

    def __init__(self, config: VJEPA2Config, hidden_size: int = 1024) -> None:
        super().__init__(config, hidden_size)
        self.image_path = field(config, "use_image_patch_embedder")
        self.modality = field(config, "use_modality_embeddings")
        if self.image_path:
            self.patch_embeddings_img = VJEPA2PatchEmbeddings3D(_with(config, tubelet_size=1), hidden_size)
        if self.modality:
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, hidden_size))
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, hidden_size))

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        size = pixel_values_videos.shape[-2:]
        if tuple(size) != (self.config.crop_size, self.config.crop_size):
            # positions come from the config's grid: another size would get the wrong ones
            raise ValueError(f"this V-JEPA 2.1 model takes {self.config.crop_size} x {self.config.crop_size} "
                             f"frames, got {size[0]} x {size[1]}")
        if not (self.image_path and pixel_values_videos.shape[1] == 1):
            tokens = super().forward(pixel_values_videos)
            return tokens + self.video_mod_embed if self.modality else tokens
        proj = self.patch_embeddings_img.proj
        tokens = self.patch_embeddings_img(pixel_values_videos.permute(0, 2, 1, 3, 4).to(proj.weight.dtype))
        return tokens + self.img_mod_embed if self.modality else tokens


@dataclass
class VJEPA21EncoderOutput(BaseModelOutput):
    """`last_hidden_state` [B, N, D]: the last level, normed; `hierarchical_hidden_state` [B, N, levels * D]."""

    hierarchical_hidden_state: torch.Tensor | None = None


class VJEPA21Encoder(nn.Module):
    """V-JEPA 2's encoder blocks between 2.1's embeddings and its level norms (see the module doc)."""

    def __init__(self, config: VJEPA2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = VJEPA21Embeddings(config, hidden_size=config.hidden_size)
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.layer = nn.ModuleList([VJEPA21Layer(config, rate) for rate in rates])
        levels = list(field(config, "hierarchical_layers") or [depth - 1])
        outputs = field(config, "num_distillation_outputs")
        if sorted(set(levels)) != levels or not 0 <= levels[0] <= levels[-1] < depth:
            raise ValueError(f"hierarchical_layers must be increasing block indices below {depth}, got {levels}")
        if not 1 <= outputs <= len(levels):
            raise ValueError(f"num_distillation_outputs must be 1..{len(levels)}, got {outputs}")
        self.hierarchical_layers = levels
        self.distilled_layers = levels[-outputs:]
        self.hierarchical_norms = nn.ModuleList(
            [nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) for _ in levels])
        self.gradient_checkpointing = False

    def level_norm(self, layer: int) -> nn.LayerNorm:
        """The norm of the level that ends at block `layer` (a `ValueError` for a block that ends none)."""
        if layer not in self.hierarchical_layers:
            raise ValueError(f"block {layer} ends no level; the levels end at blocks {self.hierarchical_layers}")
        return self.hierarchical_norms[self.hierarchical_layers.index(layer)]

    def forward(self, pixel_values_videos: torch.Tensor | None = None, return_hierarchical: bool = False,
                **kwargs: Any) -> VJEPA21EncoderOutput:
        hidden = self.embeddings(pixel_values_videos)
        levels = []
        for index, layer in enumerate(self.layer):
            hidden = layer(hidden, None, **kwargs)[0]
            if return_hierarchical and index in self.distilled_layers:
                levels.append(self.level_norm(index)(hidden))
        return VJEPA21EncoderOutput(last_hidden_state=self.hierarchical_norms[-1](hidden),
                                    hierarchical_hidden_state=torch.cat(levels, dim=-1) if levels else None)


class VJEPA21Model(VJEPA2Model):
    """`VJEPA2Model` with the 2.1 encoder (and no predictor) when the config asks for 2.1."""

    def __init__(self, config: VJEPA2Config) -> None:
        VJEPA2PreTrainedModel.__init__(self, config)  # VJEPA2Model's own __init__ would build a 2.0 encoder first
        self.config = config
        v21 = is_vjepa21(config)
        self.encoder = VJEPA21Encoder(config) if v21 else VJEPA2Encoder(config)
        self.predictor = None if v21 else VJEPA2Predictor(config)
        self.post_init()

    def forward(self, pixel_values_videos: torch.Tensor, context_mask: Any = None, target_mask: Any = None,
                skip_predictor: bool = False, **kwargs: Any) -> Any:
        if self.predictor is None and not skip_predictor:
            raise ValueError("V-JEPA 2.1's predictor is not part of this model: call it with skip_predictor=True")
        return super().forward(pixel_values_videos, context_mask=context_mask, target_mask=target_mask,
                               skip_predictor=skip_predictor, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _init_21(module)


class VJEPA21ForVideoClassification(VJEPA2ForVideoClassification):
    """`VJEPA2ForVideoClassification` over `VJEPA21Model`: the pooler reads the last level's tokens."""

    def __init__(self, config: VJEPA2Config) -> None:
        VJEPA2PreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.vjepa2 = VJEPA21Model(config)
        self.pooler = VJEPA2AttentivePooler(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels, bias=True)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _init_21(module)


class VJEPA21Layer(VJEPA2Layer):
    """`VJEPA2Layer` (same weights and names) whose attention is `VJEPA21RopeAttention`."""

    def __init__(self, config: VJEPA2Config, drop_path_rate: float = 0.0) -> None:
        nn.Module.__init__(self)  # VJEPA2Layer's own __init__ would build a 2.0 attention first
        self.config = config
        self.hidden_size = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.mlp_ratio = config.mlp_ratio
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = VJEPA21RopeAttention(config, config.hidden_size, config.num_attention_heads)
        self.drop_path = VJEPA2DropPath(drop_path_rate) if config.drop_path_rate > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VJEPA2MLP(config, hidden_size=config.hidden_size, mlp_ratio=config.mlp_ratio)


def _init_21(module: nn.Module) -> None:
    # Meta's init: modality vectors near zero (std 1e-6), so a fresh 2.1 model starts as if they were absent.
    if isinstance(module, VJEPA21Embeddings) and module.modality:
        init.normal_(module.video_mod_embed, std=1e-6)
        init.normal_(module.img_mod_embed, std=1e-6)


def _with(config: VJEPA2Config, **changes: Any) -> VJEPA2Config:
    copy = VJEPA2Config.from_dict(config.to_dict())
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy
