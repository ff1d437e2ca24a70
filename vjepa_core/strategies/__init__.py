"""Strategies: one module per strategy, each registering itself once (`registry.register`).

`STRATEGIES` maps a name to its `Strategy`, in the order users see in --help and the dashboard;
nothing outside this package lists strategy names (tests/unit/test_architecture.py holds that).
"""

from vjepa_core.strategies import (  # noqa: F401, I001  (importing a module registers its strategy)
    head,
    pooler_head,
    lora,
    pooler_head_lora,
    lora_backbone,
    full,
    scratch,
)
from vjepa_core.strategies.base import Strategy
from vjepa_core.strategies.registry import STRATEGIES, get_strategy, register

__all__ = ["STRATEGIES", "Strategy", "get_strategy", "register"]
