"""What a strategy is: which parameters train, and which PEFT LoRA adapters it adds.

A strategy never runs anything. `adapt(model, spec)` injects its LoRA layers (PEFT) in place, and
`is_trainable(name)` answers for every parameter name of the adapted model. `apply_trainable`
sets `requires_grad` from that answer: the training loop never looks at a strategy's name.
Which run options a strategy reads follows from what it trains (`uses_lora`, `adapts_encoder_with_lora`,
`trains_encoder_weights`, `trains_pooler_weights`): the run spec's fields name these, not strategies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # torch and peft load in seconds: the CLI's --help and skip paths never need them
    import torch
    from peft import LoraConfig

# Module-name regexes (PEFT matches them in full). The predictor is never touched.
POOLER_ATTENTION = r"pooler\..*\.(q_proj|k_proj|v_proj|out_proj)"
ENCODER_ATTENTION = r"vjepa2\.encoder\.layer\.\d+\.attention\.(query|key|value|proj)"
ENCODER_MLP = r"vjepa2\.encoder\.layer\.\d+\.mlp\.(fc1|fc2)"
ADAPTER_NAME = "default"
ENCODER_WEIGHT = "vjepa2.encoder.layer.0.attention.query.weight"  # one of the encoder's own weights
POOLER_WEIGHT = "pooler.query_tokens"  # one of the pooler's own weights


class LoraSettings(Protocol):
    """The run options LoRA reads (a `RunSpec` has them)."""

    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    lora_mlp: bool


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    is_trainable: Callable[[str], bool]
    frozen_encoder: bool
    frozen_pooler: bool = False
    lora_scope: tuple[str, ...] = ()
    random_init: bool = False

    # What a strategy reads of the run options is said by these properties, never by its name: each
    # RunSpec field names the one it depends on (`RunOption.read_by`), and `spec.unused_options` resets
    # the others, so that they neither change a run_id nor split one configuration in two.

    def uses_lora(self) -> bool:
        """It adds LoRA adapters: it reads lora_rank, lora_alpha and lora_dropout."""
        return bool(self.lora_scope)

    def adapts_encoder_with_lora(self) -> bool:
        """Its LoRA reaches the encoder: lora_mlp adds the encoder MLPs to it."""
        return ENCODER_ATTENTION in self.lora_scope

    def trains_encoder_weights(self) -> bool:
        """The encoder's own weights train: encoder_lr_scale scales their step (training/loop.py)."""
        return self.is_trainable(ENCODER_WEIGHT)

    def trains_pooler_weights(self) -> bool:
        """The pooler's own weights train: a fresh pooler of another depth (pooler_layers) is worth it only then."""
        return self.is_trainable(POOLER_WEIGHT)

    def lora_targets(self, spec: LoraSettings) -> str | None:
        """One regex over module names, or None for strategies without LoRA."""
        patterns = list(self.lora_scope)
        if spec.lora_mlp and ENCODER_ATTENTION in patterns:
            patterns.append(ENCODER_MLP)
        return "|".join(f"(?:{p})" for p in patterns) if patterns else None

    def lora_config(self, spec: LoraSettings) -> LoraConfig | None:
        targets = self.lora_targets(spec)
        if targets is None:
            return None
        from peft import LoraConfig

        return LoraConfig(r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                          target_modules=targets, bias="none")

    def adapt(self, model: torch.nn.Module, spec: LoraSettings) -> torch.nn.Module:
        """Inject this strategy's LoRA layers (if any) and set which parameters train."""
        config = self.lora_config(spec)
        if config is not None:
            from peft import inject_adapter_in_model

            model = inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
        apply_trainable(model, self.is_trainable)
        return model


def apply_trainable(model: torch.nn.Module, is_trainable: Callable[[str], bool]) -> list[str]:
    """Set requires_grad on every parameter from the predicate; return the trainable names."""
    names = []
    for name, param in model.named_parameters():
        param.requires_grad_(is_trainable(name))
        if param.requires_grad:
            names.append(name)
    return names


def is_lora(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


def in_module(name: str, *prefixes: str) -> bool:
    return any(name.startswith(prefix + ".") for prefix in prefixes)
