"""`scratch`: the same architecture trained end to end from random weights (the baseline arm)."""

from vjepa_core.strategies.base import Strategy, in_module
from vjepa_core.strategies.registry import register

SCRATCH = register(Strategy(
    name="scratch",
    summary="the same architecture from random init",
    is_trainable=lambda name: not in_module(name, "vjepa2.predictor"),
    frozen_encoder=False,
    random_init=True,
))
