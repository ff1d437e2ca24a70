"""Prepared engines on disk, keyed by the weights, like the token cache: atomic, bounded, listable, clearable.

Layout (`<results>/engines/`):
    <key>/engine.json     what was prepared: engine, part, model, clip shape, the evidence it was checked on, status
                          (`ok`, or `rejected` and why), its agreement with fp32 there, the encoder blocks an int8
                          engine keeps fp32 and the sensitivities that chose them, setup seconds, versions, bytes
    <key>/...             the engine's files (an ONNX graph, an OpenVINO model); none for a rejected engine
    <key>.lock            held while one process prepares that key; another waits, then reads its result

`engine_key(...)` hashes everything that changes what an engine computes or its verdict: the engine's name, the
model part, every weight of it (`content_fingerprint`: each tensor's sum and sum of squares in float64 plus
strided samples, so a change to any single weight changes the key), LoRA scalings, the encoder's feature layers,
the clip shape, the evidence and limits it is checked against, and the versions of the libraries that export and
run it. A stale entry therefore has another key and is never opened.

An entry is written in a staged folder and renamed into place (`vjepa_core.store.atomic.staged_dir`): a reader
sees a whole entry or none. `trim(root, max_bytes)` removes the least recently used entries (each use touches
its engine.json) until the cache fits; `list_entries` and `clear` back `runner cache`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vjepa_core.inference.engines.check import PROBE_LIMIT, TOKEN_TOLERANCE, TOP1_TOLERANCE, VIEW_LIMIT
from vjepa_core.store.atomic import is_temp, sweep, write_text
from vjepa_core.store.cache import directory_bytes

ENTRY_FILE = "engine.json"
# Bump when an engine's export changes, so that older entries are not opened (3: blocks kept fp32 as measured;
# 4: rotary tables; 5: OpenVINO activation groups written into the model file).
FORMAT_VERSION = 5
MAX_BYTES = 4 * 2**30  # room for a few ViT-L engines, some with blocks kept fp32
VERSIONED = ("torch", "transformers", "peft", "onnx", "onnxscript", "onnxruntime", "openvino", "nncf")


def content_fingerprint(module: torch.nn.Module) -> str:
    """A hash of every weight of `module` (the predictor excluded: inference never runs it)."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            if ".predictor." in f".{name}":
                continue
            flat = tensor.detach().reshape(-1).to(torch.float64)
            step = max(1, flat.numel() // 1024)
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(torch.stack([flat.sum(), flat.square().sum()]).cpu().numpy().tobytes())
            digest.update(flat[::step].cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


def lora_scalings(module: torch.nn.Module) -> dict[str, Any]:
    """PEFT LoRA layers' scalings (alpha / rank): they change the output but are not weights."""
    return {name: dict(sub.scaling) for name, sub in module.named_modules()
            if isinstance(getattr(sub, "scaling", None), dict)}


def versions() -> dict[str, str]:
    found = {}
    for package in VERSIONED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def engine_key(*, engine: str, part: str, module: torch.nn.Module, feature_layers: Sequence[int], frames: int,
               crop: int, evidence: str) -> str:
    limits = [PROBE_LIMIT, VIEW_LIMIT, TOP1_TOLERANCE, TOKEN_TOLERANCE]  # a stricter check: a new verdict
    description = {"format": FORMAT_VERSION, "engine": engine, "part": part, "weights": content_fingerprint(module),
                   "lora": lora_scalings(module), "layers": list(feature_layers), "frames": frames, "crop": crop,
                   "versions": versions(), "evidence": evidence, "check": limits}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def read_entry(root: Path, key: str) -> dict[str, Any] | None:
    """The entry's description, or None when it is missing or unreadable (then it is prepared again)."""
    try:
        entry = json.loads((Path(root) / key / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("key") == key else None


def touch(root: Path, key: str) -> None:
    """Mark an entry as just used (what `trim` keeps longest)."""
    with contextlib.suppress(OSError):  # a read-only cache still serves; it only cannot remember the use
        (Path(root) / key / ENTRY_FILE).touch()


def write_entry(folder: Path, entry: dict[str, Any]) -> None:
    """The description, last into the staged folder (its files are complete by then)."""
    entry = {**entry, "bytes": directory_bytes(folder), "created": time.time(), "versions": versions()}
    write_text(folder / ENTRY_FILE, json.dumps(entry, indent=1, default=str))


def list_entries(root: Path) -> list[dict[str, Any]]:
    """One row per entry, most recently used first: key, engine, part, model, clip shape, evidence, status and
    why, check, the blocks kept fp32, bytes, last use."""
    root = Path(root)
    rows = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or is_temp(folder):
            continue
        entry = read_entry(root, folder.name) or {"key": folder.name, "status": "unreadable"}
        marker = folder / ENTRY_FILE
        rows.append({"key": folder.name, "engine": entry.get("engine"), "part": entry.get("part"),
                     "model": entry.get("model"), "frames": entry.get("frames"), "crop": entry.get("crop"),
                     "evidence": entry.get("evidence"), "status": entry.get("status"), "reason": entry.get("reason"),
                     "check": entry.get("check"), "plan": entry.get("plan"),
                     "setup_s": entry.get("setup_s"), "bytes": directory_bytes(folder),
                     "last_used": marker.stat().st_mtime if marker.is_file() else folder.stat().st_mtime})
    return sorted(rows, key=lambda row: -row["last_used"])


def trim(root: Path, max_bytes: int, *, keep: str | None = None) -> list[str]:
    """Remove least recently used entries (never `keep`) until the cache holds at most `max_bytes`."""
    removed = []
    entries = list_entries(root)
    total = sum(row["bytes"] for row in entries)
    for row in reversed(entries):
        if total <= max_bytes:
            break
        if row["key"] == keep:
            continue
        shutil.rmtree(Path(root) / row["key"], ignore_errors=True)
        total -= row["bytes"]
        removed.append(row["key"])
    return removed


def clear(root: Path, *, older_than_seconds: float | None = None) -> tuple[int, int]:
    """Delete every entry (or those last used more than `older_than_seconds` ago): (entries, bytes) freed."""
    root = Path(root)
    if not root.is_dir():
        return 0, 0
    sweep(root)
    cutoff = None if older_than_seconds is None else time.time() - older_than_seconds
    count = size = 0
    for row in list_entries(root):
        if cutoff is None or row["last_used"] < cutoff:
            shutil.rmtree(root / row["key"], ignore_errors=True)
            (root / f"{row['key']}.lock").unlink(missing_ok=True)
            count, size = count + 1, size + row["bytes"]
    return count, size
