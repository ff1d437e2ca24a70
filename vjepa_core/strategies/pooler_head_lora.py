"""`pooler_head_lora`: the whole pooler, LoRA on its attention, and the classifier train."""

from vjepa_core.strategies.base import POOLER_ATTENTION, Strategy, in_module
from vjepa_core.strategies.registry import register

POOLER_HEAD_LORA = register(Strategy(
    name="pooler_head_lora",
    summary="pooler + LoRA on the pooler attention + classifier",
    is_trainable=lambda name: in_module(name, "pooler", "classifier"),
    frozen_encoder=True,
    lora_scope=(POOLER_ATTENTION,),
))
