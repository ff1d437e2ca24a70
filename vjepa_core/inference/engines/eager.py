"""Engines that run the PyTorch model itself, each named after the precision it computes in.

- `fp32`: eager PyTorch in fp32, no autocast: the reference every other engine is checked against, and what every
  engine falls back to.
- `bf16`, `fp16`: eager PyTorch under autocast to that type: `auto` on a GPU takes the one of the run's precision.
  On a CPU without native bf16/fp16 arithmetic they are slower than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vjepa_core.inference.engines.base import REFERENCE, Engine, Runner, register


@dataclass(frozen=True)
class EagerEngine(Engine):
    def build(self, part: Any, example: Any) -> Runner:
        import torch

        from vjepa_core.models.device import DTYPES

        device, dtype = next(part.parameters()).device, DTYPES[self.name]

        @torch.no_grad()
        def run(pixels: torch.Tensor) -> torch.Tensor:
            pixels = pixels.to(device)
            if self.name == REFERENCE:
                return part(pixels).float()
            with torch.autocast(device_type=device.type, dtype=dtype):
                return part(pixels).float()

        return run


FP32 = register(EagerEngine(REFERENCE, "eager PyTorch, the model as trained", cpu_only=False, eager=True))
register(EagerEngine("bf16", "eager PyTorch under bf16 autocast", cpu_only=False, eager=True))
register(EagerEngine("fp16", "eager PyTorch under fp16 autocast", cpu_only=False, eager=True))
