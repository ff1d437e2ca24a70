"""Engines that run the PyTorch model itself.

- `fp32`: eager PyTorch in fp32, no autocast: today's path on a CPU, and the reference every other engine is
  checked against.
- `bf16`, `fp16`: eager PyTorch under autocast to that type: today's path on a GPU (`auto` picks the run's
  precision there). On a CPU without native bf16/fp16 arithmetic (AVX2 only) it is slower than fp32.
- `torch-int8`: `torch.ao.quantization.quantize_dynamic` on every `Linear` but LoRA's factors (int8 weights per
  tensor, activations quantized per call, one clip per call, fbgemm's kernels). Deprecated by PyTorch in favour
  of torchao, kept for comparison.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch

from vjepa_core.inference.engines.base import Engine, Runner, register
from vjepa_core.models.device import DTYPES


def _device(part: torch.nn.Module) -> torch.device:
    return next(part.parameters()).device


@dataclass(frozen=True)
class EagerEngine(Engine):
    precision: str = "fp32"

    def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
        device, dtype = _device(part), DTYPES[self.precision]

        @torch.no_grad()
        def run(pixels: torch.Tensor) -> torch.Tensor:
            pixels = pixels.to(device)
            if self.precision == "fp32":
                return part(pixels).float()
            with torch.autocast(device_type=device.type, dtype=dtype):
                return part(pixels).float()

        return run


@dataclass(frozen=True)
class TorchInt8Engine(Engine):
    def build(self, part: torch.nn.Module, example: torch.Tensor) -> Runner:
        with warnings.catch_warnings():  # its deprecation notice, once per call; the module doc says it
            warnings.simplefilter("ignore")
            copied = copy.deepcopy(part).cpu()
            quantized = torch.ao.quantization.quantize_dynamic(copied, quantizable_linears(copied), dtype=torch.qint8)

        @torch.no_grad()
        def run(pixels: torch.Tensor) -> torch.Tensor:
            # Activations are quantized with one scale per call: one clip per call keeps a clip's answer
            # independent of the clips batched with it.
            return torch.cat([quantized(clip[None]).float() for clip in pixels.cpu()])

        return run


def quantizable_linears(part: torch.nn.Module) -> set[str]:
    """Names of the `Linear` layers to quantize: all but PEFT LoRA's `lora_A`/`lora_B` factors, whose layer reads
    their `.weight` as a tensor (a quantized `Linear` has a `weight()` method instead); their base layers are
    quantized."""
    return {name for name, module in part.named_modules()
            if type(module) is torch.nn.Linear and not {"lora_A", "lora_B"} & set(name.split("."))}


FP32 = register(EagerEngine("fp32", "eager PyTorch, fp32 (the reference)", cpu_only=False))
register(EagerEngine("bf16", "eager PyTorch under bf16 autocast", cpu_only=False, precision="bf16"))
register(EagerEngine("fp16", "eager PyTorch under fp16 autocast", cpu_only=False, precision="fp16"))
register(TorchInt8Engine("torch-int8", "torch.ao dynamic int8 quantization of the linear layers (deprecated API)"))
