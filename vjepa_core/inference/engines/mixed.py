"""Keep an int8 engine's answers by spending precision where it matters: which encoder blocks stay fp32.

`quantize_checked(engine, module, example, evidence, part=..., folder=...)` -> (the check, the `Plan`):
1. The part is converted once and quantized whole (every encoder block int8, the head fp32), written to `folder`
   and checked on the evidence. If it passes, that is the engine.
2. Otherwise each block's sensitivity is measured with the engine's own kernels: the part with that block alone
   in int8, on the `SENSITIVITY_CLIPS` clips the whole-int8 engine moved most, its error (`check.clip_errors`).
3. The most sensitive blocks stay fp32: as many as the sensitivities say bring the error under the limit (taken
   as adding up), then one more at a time until the check passes on the whole evidence, up to `MAX_FP32_SHARE`
   of the blocks (beyond that little of int8's speed would remain, and the engine is rejected).
The plan (the blocks kept fp32, every block's sensitivity, each set tried and its figure) goes with the check
into the engine's cache entry.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vjepa_core.inference.engines.base import Int8Engine
from vjepa_core.inference.engines.check import Agreement, Evidence, clip_errors, run_batched, show_step

log = logging.getLogger(__name__)

SENSITIVITY_CLIPS = 2
MAX_FP32_SHARE = 0.5


@dataclass(frozen=True)
class Plan:
    """How an int8 engine was quantized: which of its encoder's `blocks` stayed fp32, and the measurements why."""

    blocks: int
    fp32_blocks: tuple[int, ...] = ()
    sensitivity: dict[int, float] = field(default_factory=dict)  # block -> its error alone in int8
    tries: tuple[dict[str, Any], ...] = ()  # each set of fp32 blocks checked: its size, how far over the limits

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.fp32_blocks:
            return f"all {self.blocks} encoder blocks int8"
        return (f"{len(self.fp32_blocks)} of {self.blocks} encoder blocks kept fp32 "
                f"({', '.join(map(str, self.fp32_blocks))})")


def quantize_checked(engine: Int8Engine, module: Any, example: Any, evidence: Evidence, *, part: str,
                     folder: Path, bar: Any = None) -> tuple[Agreement, Plan]:
    """The engine for `module`, written into `folder`, with as few encoder blocks in fp32 as keep the answers.
    `bar` (a `progress_bar`) shows each step and counts the clips run."""
    tries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vjepa-convert-") as workdir:
        show_step(bar, "export")
        converted = engine.convert(module, example, Path(workdir))
        blocks = engine.blocks(converted)

        def attempt(kept: tuple[int, ...]) -> tuple[Agreement, Any]:
            for item in folder.iterdir():
                shutil.rmtree(item) if item.is_dir() else item.unlink()
            show_step(bar, f"quantize ({len(kept)} blocks fp32)")
            engine.quantize(converted, folder, fp32_blocks=frozenset(kept))
            check, errors = evidence.check(part, module, engine.open(folder), bar)
            tries.append({"fp32_blocks": len(kept), "excess": round(check.excess, 4), "passed": check.passed})
            return check, errors

        check, errors = attempt(())
        if check.passed or not blocks:
            return check, Plan(len(blocks), tries=tuple(tries))
        log.info("engine %s: %s; measuring each of its %d encoder blocks' share", engine.name, check.describe(),
                 len(blocks))
        hardest = errors.argsort(descending=True)[:SENSITIVITY_CLIPS]
        sensitivity = _sensitivity(engine, converted, blocks, evidence, part=part, module=module, clips=hardest,
                                   bar=bar)
        order = sorted(blocks, key=lambda block: -sensitivity[block])
        most = max(1, int(len(blocks) * MAX_FP32_SHARE))
        count = min(_enough(order, sensitivity, check.excess), most)
        while True:
            check, _ = attempt(tuple(sorted(order[:count])))
            if check.passed or count >= most:
                break
            count += 1
    return check, Plan(len(blocks), tuple(sorted(order[:count])), sensitivity, tuple(tries))


def _sensitivity(engine: Int8Engine, converted: Any, blocks: list[int], evidence: Evidence, *, part: str,
                 module: Any, clips: Any, bar: Any = None) -> dict[int, float]:
    """Per block: the largest error on `clips` (indices into the evidence) with that block alone in int8."""
    reference = evidence.reference(part, module)[clips]
    found = {}
    for done, block in enumerate(blocks):
        show_step(bar, f"block sensitivity {done + 1}/{len(blocks)}")
        runner = engine.trial(converted, frozenset(blocks) - {block})
        candidate = run_batched(runner, evidence.clips[clips], bar=bar)
        found[block] = round(float(clip_errors(part, reference, candidate).max()), 6)
        del runner  # one trial's model in memory at a time
    return found


def _enough(order: list[int], sensitivity: dict[int, float], excess: float) -> int:
    """How many of the most sensitive blocks to keep fp32 so that the rest's share of the summed sensitivity is at
    most 1 / `excess` (how far over its limit the whole-int8 engine was)."""
    total = sum(sensitivity.values())
    remaining, count = total, 0
    while count < len(order) and (not math.isfinite(excess) or remaining > total / excess):
        remaining -= sensitivity[order[count]]
        count += 1
    return max(1, count)
