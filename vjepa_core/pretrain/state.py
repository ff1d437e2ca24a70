"""Per-epoch training state on disk, written atomically, so that a killed pretraining run resumes exactly: the
online model, the EMA target, AdamW's moments (safetensors) and the counters (JSON) of the last finished epoch,
in a folder that exists only when complete. Never pickles; random draws derive from (seed, epoch), so no
random state needs saving.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vjepa_core.store.atomic import staged_dir

STATE = "state.json"
PREFIX = "epoch-"


@dataclass
class TrainState:
    epoch: int
    step: int
    history: list[dict[str, Any]]
    best_epoch: int
    online: dict[str, torch.Tensor]
    target: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def save_state(work: Path, state: TrainState) -> Path:
    """Write `work/epoch-NNNN/` atomically, then drop older epochs; returns the folder."""
    final = work / f"{PREFIX}{state.epoch:04d}"
    with staged_dir(final) as tmp:
        save_file(_contiguous(state.online), tmp / "online.safetensors")
        save_file(_contiguous(state.target), tmp / "target.safetensors")
        tensors, groups = _flatten_optimizer(state.optimizer)
        save_file(tensors, tmp / "optimizer.safetensors")
        meta = {"epoch": state.epoch, "step": state.step, "history": state.history,
                "best_epoch": state.best_epoch, "param_groups": groups}
        (tmp / STATE).write_text(json.dumps(meta, indent=1, default=float))
    for older in _epoch_dirs(work):
        if older != final:
            shutil.rmtree(older)
    return final


def load_latest_state(work: Path) -> TrainState | None:
    """The newest complete epoch under `work`, or None (a fresh start)."""
    folders = _epoch_dirs(work)
    if not folders:
        return None
    folder = folders[-1]
    meta = json.loads((folder / STATE).read_text())
    optimizer = _unflatten_optimizer(load_file(folder / "optimizer.safetensors"), meta["param_groups"])
    return TrainState(epoch=meta["epoch"], step=meta["step"], history=meta["history"],
                      best_epoch=meta["best_epoch"], online=load_file(folder / "online.safetensors"),
                      target=load_file(folder / "target.safetensors"), optimizer=optimizer)


def _epoch_dirs(work: Path) -> list[Path]:
    if not work.is_dir():
        return []
    return sorted(p for p in work.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / STATE).is_file())


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors = {f"{index}.{name}": value.detach().cpu().contiguous()
               for index, entry in state_dict["state"].items() for name, value in entry.items()
               if isinstance(value, torch.Tensor)}
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}
