"""Multi-block 3-D masks for masked latent prediction (V-JEPA's "multiblock" masking).

A clip's tokens form a grid [T', H', W'], flattened in the encoder's order. A `BlockMask` hides the union of a
few boxes, each spanning part of the frame and (by default) all of the clip's time, so that an object cannot be
copied from an unmasked moment: that union is the target the predictor fills, the rest the context the
encoder sees. `sample_masks` -> one (context [B, Nc], target [B, Nt]) pair of int64 token indices per mask,
rows trimmed at random to the batch's shortest so that they stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vjepa_core.errors import UserError

Grid = tuple[int, int, int]  # tokens along time, height, width
# Redraw a sample whose blocks happen to cover every token at most this often before giving up.
MAX_REDRAWS = 20


@dataclass(frozen=True)
class BlockMask:
    num_blocks: int
    spatial_scale: float
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    temporal_scale: float = 1.0
    # The context comes from the first `context_time` of the clip only; everything later is target, so the
    # predictor must carry what it saw forward in time (V-JEPA's max_temporal_keep). 1.0: no such limit.
    context_time: float = 1.0

    def block_size(self, grid: Grid, rng: np.random.Generator) -> tuple[int, int, int]:
        """(t, h, w) tokens of one block: drawn once per batch, as V-JEPA does, so blocks vary in place only."""
        frames, height, width = grid
        area = height * width * self.spatial_scale
        aspect = rng.uniform(*self.aspect_ratio)
        h = min(height, max(1, round(math.sqrt(area * aspect))))
        w = min(width, max(1, round(math.sqrt(area / aspect))))
        return max(1, int(frames * self.temporal_scale)), h, w

    def describe(self) -> str:
        future = "" if self.context_time == 1.0 else f"/{self.context_time:g}"
        return f"{self.num_blocks}x{self.spatial_scale:g}{future}"


# V-JEPA 2's pretraining masks (configs/train/vitl16: 8 blocks at 0.15, 2 at 0.7, aspect 0.75-1.5, all of time).
DEFAULT_MASKS: tuple[BlockMask, ...] = (BlockMask(8, 0.15), BlockMask(2, 0.7))


def parse_masks(text: str) -> tuple[BlockMask, ...]:
    """'8x0.15,2x0.7/0.5' -> BlockMasks: blocks x spatial scale, optionally /share of time the context may
    come from, comma-separated (one mask each)."""
    masks = []
    usage = "write blocks x scale[/context time], e.g. 8x0.15,2x0.7 or 4x0.15/0.5"
    for part in (p.strip() for p in text.split(",") if p.strip()):
        count, sep, rest = part.partition("x")
        scale, _, context_time = rest.partition("/")
        try:
            masks.append(BlockMask(int(count), float(scale), context_time=float(context_time or 1.0)))
        except ValueError:
            raise UserError(f"masks: cannot read {part!r}; {usage}") from None
        if not sep:
            raise UserError(f"masks: cannot read {part!r}; {usage}")
    if not masks:
        raise UserError("masks: give at least one mask, e.g. 8x0.15,2x0.7")
    return tuple(masks)


def check_masks(masks: Sequence[BlockMask], grid: Grid) -> None:
    """UserError for settings that can never leave a context or a target on this token grid."""
    frames, height, width = grid
    for mask in masks:
        name = f"mask {mask.describe()}"
        if mask.num_blocks < 1:
            raise UserError(f"{name}: needs at least 1 block, got {mask.num_blocks}")
        if not 0 < mask.spatial_scale <= 1:
            raise UserError(f"{name}: spatial scale must be in (0, 1], got {mask.spatial_scale:g}")
        if not 0 < mask.temporal_scale <= 1:
            raise UserError(f"{name}: temporal scale must be in (0, 1], got {mask.temporal_scale:g}")
        if not 0 < mask.context_time <= 1 or int(frames * mask.context_time) < 1:
            raise UserError(f"{name}: the context time share must be in (0, 1] and keep at least one of "
                            f"{frames} time steps, got {mask.context_time:g}")
        low, high = mask.aspect_ratio
        if not 0 < low <= high:
            raise UserError(f"{name}: aspect ratio range must satisfy 0 < low <= high, got {low:g}-{high:g}")
        if height * width * mask.spatial_scale < 0.5:
            raise UserError(f"{name}: a block of {mask.spatial_scale:g} of a {height}x{width} token grid covers "
                            f"no token; use a larger scale or a finer grid (smaller patch or larger crop)")
        covers = expected_masked(mask, grid, samples=64)
        if covers > 0.99:
            raise UserError(f"{name}: its blocks cover {covers:.0%} of a {frames}x{height}x{width} token grid, "
                            f"leaving the context encoder nothing to see; use fewer or smaller blocks")


def expected_masked(mask: BlockMask, grid: Grid, *, samples: int = 256, seed: int = 0) -> float:
    """Mean share of tokens a mask hides, estimated from `samples` draws (context-less draws count as 1)."""
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(samples):
        hidden = _union_of_blocks(mask, grid, mask.block_size(grid, rng), rng)
        shares.append(hidden.mean())
    return float(np.mean(shares))


def sample_masks(masks: Sequence[BlockMask], grid: Grid, batch: int, rng: np.random.Generator
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One (context [B, Nc], target [B, Nt]) pair of sorted int64 token indices per mask."""
    return [_sample_one(mask, grid, batch, rng) for mask in masks]


def _sample_one(mask: BlockMask, grid: Grid, batch: int, rng: np.random.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    size = mask.block_size(grid, rng)
    contexts, targets = [], []
    for _ in range(batch):
        for _ in range(MAX_REDRAWS):
            hidden = _union_of_blocks(mask, grid, size, rng).reshape(-1)
            if not hidden.all():
                break
        else:
            raise UserError(f"mask {mask.describe()}: {MAX_REDRAWS} draws in a row covered every token of a "
                            f"{'x'.join(map(str, grid))} grid; use fewer or smaller blocks")
        contexts.append(np.flatnonzero(~hidden))
        targets.append(np.flatnonzero(hidden))
    return _stack_trimmed(contexts, rng), _stack_trimmed(targets, rng)


def _union_of_blocks(mask: BlockMask, grid: Grid, size: tuple[int, int, int], rng: np.random.Generator
                     ) -> np.ndarray:
    """bool [T', H', W']: True where any of the mask's blocks lies."""
    frames, height, width = grid
    t, h, w = size
    hidden = np.zeros(grid, dtype=bool)
    for _ in range(mask.num_blocks):
        start, top, left = (int(rng.integers(0, n - k + 1)) for n, k in ((frames, t), (height, h), (width, w)))
        hidden[start:start + t, top:top + h, left:left + w] = True
    hidden[max(1, int(frames * mask.context_time)):] = True
    return hidden


def _stack_trimmed(rows: list[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
    keep = min(len(row) for row in rows)
    trimmed = [np.sort(rng.choice(row, keep, replace=False)) if len(row) > keep else row for row in rows]
    return torch.from_numpy(np.stack(trimmed).astype(np.int64))


def token_grid(frames_per_clip: int, *, tubelet_size: int, crop_size: int, patch_size: int) -> Grid:
    side = crop_size // patch_size
    return max(1, frames_per_clip // tubelet_size), side, side
