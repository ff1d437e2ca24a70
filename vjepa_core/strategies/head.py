"""`head`: only the linear classifier trains; encoder and pooler outputs are both cacheable."""

from vjepa_core.strategies.base import Strategy, in_module
from vjepa_core.strategies.registry import register

HEAD = register(Strategy(
    name="head",
    summary="linear classifier on the frozen pooler",
    is_trainable=lambda name: in_module(name, "classifier"),
    frozen_encoder=True,
    frozen_pooler=True,
))
