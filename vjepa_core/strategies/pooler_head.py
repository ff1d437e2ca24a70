"""`pooler_head`: the attentive pooler and the classifier train; encoder tokens are cacheable."""

from vjepa_core.strategies.base import Strategy, in_module
from vjepa_core.strategies.registry import register

POOLER_HEAD = register(Strategy(
    name="pooler_head",
    summary="attentive pooler + classifier on the frozen encoder",
    is_trainable=lambda name: in_module(name, "pooler", "classifier"),
    frozen_encoder=True,
))
