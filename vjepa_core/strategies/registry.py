"""The strategy registry: `register` adds one `Strategy` and refuses a duplicate name."""

from __future__ import annotations

from vjepa_core.errors import UserError, did_you_mean
from vjepa_core.strategies.base import Strategy

STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if strategy.name in STRATEGIES:
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise UserError(f"strategy: unknown {name!r} (choose from {', '.join(STRATEGIES)})"
                        f"{did_you_mean([name], STRATEGIES)}")
    return STRATEGIES[name]
