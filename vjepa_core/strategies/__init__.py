"""The strategy registry: one module per strategy, each registering itself once.

`STRATEGIES` maps a name to its `Strategy`; `register` refuses a duplicate name.
"""

from __future__ import annotations

from vjepa_core.strategies.base import Strategy

STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if strategy.name in STRATEGIES:
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    from vjepa_core.errors import UserError

    if name not in STRATEGIES:
        raise UserError(f"strategy: unknown {name!r} (choose from {', '.join(STRATEGIES)})")
    return STRATEGIES[name]


# Registration order is the order users see in --help and the dashboard.
from vjepa_core.strategies import (  # noqa: E402, F401, I001
    head,
    pooler_head,
    lora,
    pooler_head_lora,
    lora_backbone,
    full,
    scratch,
)
