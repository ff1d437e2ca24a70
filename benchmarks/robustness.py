"""What the robustness benchmarks (`concurrent_matrix`, `kill_torture`) and their tests share: a small matrix on
a synthetic set, real `runner` processes, and `audit(warehouse, results, run_ids)`, which counts what must be
zero after any number of concurrent runners, kills and resumes (runs lost, duplicate or orphan rows,
checkpoints or cache entries that do not read back, temporary files and claims left).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vjepa_core.errors import UserError
from vjepa_core.store.atomic import is_temp
from vjepa_core.store.warehouse import read_connection
from vjepa_core.strategies import STRATEGIES

# The natural key of each run table: two rows with the same key are one row written twice.
KEYS = {"runs": "run_id", "epochs": "run_id, epoch", "class_metrics": "run_id, split, class_name",
        "confusion": "run_id, split, true_class, pred_class", "predictions": "run_id, split, video"}
SUMMARY = re.compile(r"(\d+) run\(s\): (\d+) ran, (\d+) skipped \(already done\), "
                     r"(?:(\d+) skipped \(running elsewhere\), )?(\d+) failed")
FAST = {"model": "tiny", "batch_size": 4, "train_views": 1}


def strategy_for(role: str) -> str:
    """A registered strategy by what it exercises (names live in the registry only):
    `pooler`: frozen encoder (cached tokens), trains the pooler; `lora`: frozen encoder, writes a PEFT
    adapter folder; `pixel`: trains the pretrained encoder, decoding every step."""
    wanted = {
        "pooler": lambda s: s.frozen_encoder and not s.frozen_pooler and not s.lora_scope,
        "lora": lambda s: s.frozen_encoder and bool(s.lora_scope),
        "pixel": lambda s: not s.frozen_encoder and not s.lora_scope and not s.random_init,
    }[role]
    return next(name for name, strategy in STRATEGIES.items() if wanted(strategy))


def write_matrix(path: Path, data: Path, *, strategies: list[str], frames: list[int], seeds: list[int],
                 epochs: int = 1) -> Path:
    """A matrix spec: strategies x frames_per_clip x seeds on `data`, tiny preset."""
    path.write_text(yaml.safe_dump({
        "name": path.stem, "axes": {"strategies": strategies, "frames_per_clip": frames, "seeds": seeds},
        "base": {**FAST, "data": str(data), "epochs": epochs}}))
    return path


def runner_command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "runner", *map(str, args)]


def summary_counts(output: str) -> dict[str, int]:
    """The counts of a `run-matrix` summary line (ran, done, elsewhere, failed, total)."""
    match = SUMMARY.search(output)
    if match is None:
        raise ValueError(f"no run-matrix summary in: {output[-2000:]}")
    total, ran, done, elsewhere, failed = (int(group or 0) for group in match.groups())
    return {"total": total, "ran": ran, "done": done, "elsewhere": elsewhere, "failed": failed}


def debris(root: Path) -> list[Path]:
    """Temporary files under `root`, and cache arrays without their commit mark."""
    found = [p for p in root.rglob("*") if is_temp(p)]
    return found + [p for p in root.glob("cache/*/*.npy") if not p.with_suffix(".json").is_file()]


@dataclass
class Audit:
    expected: int
    success: int
    lost: int
    extra_runs: int
    duplicate_rows: int
    orphan_rows: int
    checkpoints: int
    unreadable_checkpoints: int
    temp_files: int
    cache_entries: int
    unreadable_cache_entries: int
    stray_cache_arrays: int
    claims_left: int

    @property
    def clean(self) -> bool:
        return not (self.lost or self.extra_runs or self.duplicate_rows or self.orphan_rows or
                    self.unreadable_checkpoints or self.temp_files or self.unreadable_cache_entries or
                    self.stray_cache_arrays or self.claims_left)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


def audit(warehouse: Path, results: Path, run_ids: list[str]) -> Audit:
    with read_connection(warehouse) as conn:
        status = dict(conn.execute("SELECT run_id, status FROM runs").fetchall())
        duplicates = sum(conn.execute(f'SELECT count(*) - count(DISTINCT ({key})) FROM "{table}"').fetchall()[0][0]
                         for table, key in KEYS.items())
        orphans = sum(conn.execute(f'SELECT count(*) FROM "{table}" WHERE run_id NOT IN '
                                   "(SELECT run_id FROM runs WHERE status = 'success')").fetchall()[0][0]
                      for table in KEYS if table != "runs")
        claims = conn.execute("SELECT count(*) FROM claims").fetchall()[0][0]
    checkpoints = [p for p in (results / "checkpoints").glob("*") if p.is_dir() and not is_temp(p)]
    entries, unreadable, stray = _cache_health(results / "cache")
    return Audit(
        expected=len(run_ids), success=sum(status.get(r) == "success" for r in run_ids),
        lost=sum(status.get(r) != "success" for r in run_ids), extra_runs=len(set(status) - set(run_ids)),
        duplicate_rows=duplicates, orphan_rows=orphans, checkpoints=len(checkpoints),
        unreadable_checkpoints=sum(not _loads(p) for p in checkpoints),
        temp_files=sum(1 for p in results.rglob("*") if is_temp(p)),
        cache_entries=entries, unreadable_cache_entries=unreadable, stray_cache_arrays=stray, claims_left=claims)


def _loads(folder: Path) -> bool:
    from vjepa_core.store.checkpoint import load_checkpoint

    try:
        load_checkpoint(folder)
    except (UserError, OSError, ValueError, KeyError, RuntimeError):
        return False
    return True


def _cache_health(root: Path) -> tuple[int, int, int]:
    """(entries, entries that do not read back whole, arrays without their .json commit mark)."""
    entries = unreadable = 0
    for meta_file in root.glob("*/*.json"):
        if meta_file.name == "group.json" or is_temp(meta_file):
            continue
        entries += 1
        try:
            meta = json.loads(meta_file.read_text())
            array = np.load(meta_file.with_suffix(".npy"))  # all of it, not a memory map
            whole = list(array.shape) == meta["shape"] and str(array.dtype) == meta["dtype"]
        except (OSError, ValueError, KeyError, EOFError):
            whole = False
        unreadable += not whole
    stray = sum(1 for npy in root.glob("*/*.npy") if not npy.with_suffix(".json").is_file())
    return entries, unreadable, stray
