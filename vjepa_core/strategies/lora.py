"""`lora`: PEFT LoRA on the pooler's attention projections + the classifier."""

from vjepa_core.strategies.base import POOLER_ATTENTION, Strategy, in_module, is_lora
from vjepa_core.strategies.registry import register

LORA = register(Strategy(
    name="lora",
    summary="LoRA on the pooler attention (q/k/v/out) + classifier",
    is_trainable=lambda name: is_lora(name) or in_module(name, "classifier"),
    frozen_encoder=True,
    lora_scope=(POOLER_ATTENTION,),
))
