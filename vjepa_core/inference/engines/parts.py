"""The part of a model an engine runs: a plain `torch.nn.Module` cut from a `VJEPA2ForVideoClassification` (LoRA,
feature layers and all), with one tensor in and one out:
- `classifier`: pixels [B, T, 3, crop, crop] -> logits [B, labels] (`runner predict`, the demo);
- `encoder`: pixels [B, T, 3, crop, crop] -> tokens [B, N, D], the encoder's output as the token cache stores it
  (`runner embed`).
"""

from __future__ import annotations

import torch

PARTS = ("classifier", "encoder")


class ClassifierPart(torch.nn.Module):
    """pixels [B, T, 3, crop, crop] -> logits [B, labels]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values_videos=pixel_values_videos).logits


class EncoderPart(torch.nn.Module):
    """pixels [B, T, 3, crop, crop] -> tokens [B, N, D]: what `encode_tokens` caches (feature layers included,
    their hooks sit on the encoder)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = model.vjepa2.encoder

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixel_values_videos=pixel_values_videos).last_hidden_state


def model_part(model: torch.nn.Module, part: str) -> torch.nn.Module:
    if part not in PARTS:
        raise ValueError(f"unknown model part {part!r} (one of {', '.join(PARTS)})")
    return (ClassifierPart if part == "classifier" else EncoderPart)(model).eval()


def encoder_blocks(module: torch.nn.Module) -> int:
    """How many transformer blocks the part's encoder has (what an int8 engine may keep in fp32, one by one)."""
    return sum(1 for name, _ in module.named_modules() if _is_block(name))


def _is_block(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 3 and parts[-3:-1] == ["encoder", "layer"] and parts[-1].isdigit()
