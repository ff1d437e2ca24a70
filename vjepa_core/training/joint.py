"""Which runs may train side by side on one pass of the cached tokens, the policy the matrix driver groups by:
runs may differ only in fields declared `per_run` (how each optimises, what trains); everything else (data,
model, frames, views, seed, batch size, precision) makes the shared batches, and the token cache must be on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vjepa_core.spec import PER_RUN_FIELDS, ExecOptions, RunSpec
from vjepa_core.strategies import get_strategy


def joinable(spec: RunSpec, options: ExecOptions) -> bool:
    """Runs on cached tokens can share one pass over them; runs that train the encoder cannot."""
    return get_strategy(spec.strategy).frozen_encoder and options.cache


def joint_key(spec: RunSpec) -> tuple[Any, ...]:
    """Runs with the same key see the same batches: they can train together."""
    values = spec.to_dict()
    shared = tuple((name, json.dumps(values[name])) for name in sorted(values) if name not in PER_RUN_FIELDS)
    return (*shared, get_strategy(spec.strategy).frozen_pooler)  # pooled vectors or tokens


def joint_groups(specs: Sequence[RunSpec], options: ExecOptions) -> list[list[RunSpec]]:
    """`specs` in groups that train together (at most `options.joint` each), in plan order of first member."""
    groups: dict[tuple[Any, ...], list[list[RunSpec]]] = {}
    order: list[list[RunSpec]] = []
    for spec in specs:
        if not joinable(spec, options) or options.joint <= 1:
            order.append([spec])
            continue
        chunks = groups.setdefault(joint_key(spec), [])
        if not chunks or len(chunks[-1]) >= options.joint:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(spec)
    return order
