"""Rotary positions as fixed tables while an engine exports a part: `with fixed_rope(part, example): export(...)`.

V-JEPA 2's attention rotates queries and keys with slices, pair swaps and concatenations at every call. Exported,
those become dozens of small ops per block that OpenVINO's and ONNX Runtime's CPU kernels run slowly (on a
ViT-L-shaped model about a tenth of an int8 engine's time: docs/benchmarks/engines.md). An engine's clip shape is
fixed, and so are the positions: per token and channel the rotation is `x * cos + partner(x) * sin`, with
`partner` swapping each pair of channels. Inside the block the tables are constants and the swap one matmul by a
fixed permutation (`RopeSwap`, which int8 engines leave in fp32: it moves values, it computes nothing).

The tables are read off each module's own rotation (of two probe vectors: ones on the even channels, ones on the
odd), so they hold for V-JEPA 2 and 2.1 alike; a module whose rotation of random vectors they do not rebuild bit
for bit keeps its own. Outside the block nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2RopeAttention

from vjepa_core.inference.engines.base import ROPE_SWAP


class RopeSwap(torch.nn.Module):
    """x [..., D] -> x[..., permutation]: a linear map by a fixed 0/1 matrix (exact), which exports as a matmul named
    after this module."""

    def __init__(self, permutation: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("matrix", torch.eye(len(permutation))[permutation].contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.matrix)


def rotation_tables(module: VJEPA2RopeAttention, tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(cos [tokens, D], signed sin [tokens, D], partner [D]) with `module`'s rotation of qk [..., tokens, D] equal
    to `qk * cos + qk[..., partner] * sin`; None if its rotation is not of that form (checked on random vectors)."""
    dim = module.attention_head_size
    if dim % 2:
        return None
    positions = module.get_position_ids(torch.zeros(1, tokens, 1))
    partner = torch.arange(dim) ^ 1
    even = (torch.arange(dim) % 2 == 0).float()
    probes = torch.stack([even, 1 - even]).unsqueeze(1).expand(2, tokens, dim)  # 1 on even / on odd channels
    generator = torch.Generator().manual_seed(0)
    trial = torch.randn(3, tokens, dim, generator=generator)
    with torch.no_grad():
        rotated = module.apply_rotary_embeddings(torch.cat([probes, trial]).unsqueeze(0), positions)[0]
    # A channel's own weight is read where its probe is 1, its partner's where the partner's probe is 1.
    cos = torch.where(even.bool(), rotated[0], rotated[1])
    sin = torch.where(even.bool(), rotated[1], rotated[0])
    rebuilt = trial * cos + trial[..., partner] * sin
    return (cos, sin, partner) if torch.equal(rebuilt, rotated[2:]) else None


def tokens_per_clip(config: Any, frames: int, crop: int) -> int:
    """The encoder's tokens for one clip of `frames` x `crop` px (one frame: an image, one tubelet's worth)."""
    return max(frames // config.tubelet_size, 1) * (crop // config.patch_size) ** 2


@contextmanager
def fixed_rope(part: torch.nn.Module, example: torch.Tensor) -> Iterator[int]:
    """Within the block, the attention modules of `part` rotate by tables for clips shaped like `example`
    [B, T, 3, crop, crop]; yields how many modules changed. Afterwards the part is as it was."""
    changed: list[tuple[VJEPA2RopeAttention, dict[str, Any]]] = []
    try:
        for module in part.modules():
            if isinstance(module, VJEPA2RopeAttention):
                own = {key: value for key, value in vars(module).items() if key == "apply_rotary_embeddings"}
                if _fix(module, example):
                    changed.append((module, own))
        yield len(changed)
    finally:
        for module, own in changed:
            del module.apply_rotary_embeddings
            vars(module).update(own)  # an instance's own rotation, if it had one; else the class's again
            del module.rope_swap, module.rope_cos, module.rope_sin


def _fix(module: VJEPA2RopeAttention, example: torch.Tensor) -> bool:
    tokens = tokens_per_clip(module.config, example.shape[1], example.shape[-1])
    tables = rotation_tables(module, tokens)
    if tables is None:
        return False
    cos, sin, partner = tables
    own = module.apply_rotary_embeddings
    module.add_module(ROPE_SWAP, RopeSwap(partner))
    module.register_buffer("rope_cos", cos, persistent=False)
    module.register_buffer("rope_sin", sin, persistent=False)

    def rotate(qk: torch.Tensor, pos_ids: Any) -> torch.Tensor:
        if qk.shape[-2] != tokens:  # another clip shape than the tables': the module's own rotation
            return own(qk, pos_ids)
        return qk * module.rope_cos + module.rope_swap(qk) * module.rope_sin

    module.apply_rotary_embeddings = rotate
    return True
