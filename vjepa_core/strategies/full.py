"""`full`: every weight of encoder, pooler and classifier trains, from the pretrained weights."""

from vjepa_core.strategies.base import Strategy, in_module
from vjepa_core.strategies.registry import register

FULL = register(Strategy(
    name="full",
    summary="full fine-tuning from the pretrained weights",
    is_trainable=lambda name: not in_module(name, "vjepa2.predictor"),
    frozen_encoder=False,
))
