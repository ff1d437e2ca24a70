"""`lora_backbone`: LoRA on the encoder attention (and MLP with `lora_mlp`) and the pooler, + classifier.

The encoder changes, so its tokens cannot be cached: every step runs the full model.
"""

from vjepa_core.strategies.base import ENCODER_ATTENTION, POOLER_ATTENTION, Strategy, in_module, is_lora
from vjepa_core.strategies.registry import register

LORA_BACKBONE = register(Strategy(
    name="lora_backbone",
    summary="LoRA on encoder + pooler attention + classifier",
    is_trainable=lambda name: is_lora(name) or in_module(name, "classifier"),
    frozen_encoder=False,
    lora_scope=(ENCODER_ATTENTION, POOLER_ATTENTION),
))
