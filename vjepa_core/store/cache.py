"""A cache of frozen-encoder outputs, shared by runs, strategies, seeds and sweep points: the encoder runs once
per video view, however many runs train on it.

On disk, `<results>/cache/<group>/<entry>.npy` holds one view of one video (tokens [N, D] or a pooled vector
[D], float16) and `<entry>.json` its metadata, written last as the commit mark. The group hashes everything
that changes every entry (encoder weights, geometry, preprocessing, precision, library versions), the entry
the video's path, size and mtime and the view, so a stale entry has another name and is never read; a
missing or damaged one is a miss and is rebuilt. `TokenCache(None, ...)` keeps entries in memory, for one run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from vjepa_core.store.atomic import sweep, write_bytes, write_text

DTYPE = np.float16  # half the bytes of fp32; the trainable part upcasts, and fp16 keeps 11 bits of mantissa
GROUP_FILE = "group.json"
Entry = tuple[np.ndarray, dict[str, Any]]  # array (tokens [N, D] or a pooled vector [D]), metadata
Tag = TypeVar("Tag", bound=Hashable)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def video_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What tells one video file from another, or from itself after an edit."""
    from vjepa_core.data.decode import decord_misreads  # here: the package's transforms import torch

    stat = os.stat(path)
    identity = {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    # Tokens of a file decord misreads were once encoded from its wrong frames: a key of its own re-encodes it.
    if decord_misreads(os.fspath(path)):
        identity["reader"] = "pyav"
    return identity


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class TokenCache:
    """Entries of one group: `fetch` what is wanted, encoding only what the cache does not hold."""

    def __init__(self, root: Path | None, group: dict[str, Any]) -> None:
        self.group = group
        self.group_id = _digest(group)
        self.dir = Path(root) / self.group_id if root is not None else None
        self._memory: dict[str, Entry] = {}
        self.stats = CacheStats()
        if self.dir is not None:
            sweep(self.dir)

    def fetch(self, wanted: Mapping[Tag, tuple[str | os.PathLike[str], dict[str, Any]]], *,
              encode_missing: Callable[[list[Tag]], Iterable[tuple[Tag, np.ndarray, dict[str, Any]]]]
              ) -> dict[Tag, Entry]:
        """Every entry of `wanted` (tag -> (video, view)): read if held (a hit), else made by `encode_missing`.

        `encode_missing(missing tags)` is called once, only if something is missing, and yields
        (tag, array, meta) for each; every one is stored as it arrives, so that an interrupted fill keeps
        what it finished. Arrays on disk come back memory-mapped.
        """
        keys = {tag: _entry_key(video, view) for tag, (video, view) in wanted.items()}
        found: dict[Tag, Entry] = {}
        missing: list[Tag] = []
        for tag, key in keys.items():
            entry = self._memory.get(key) if self.dir is None else _read_entry(self.dir, key)
            if entry is None:
                missing.append(tag)
            else:
                found[tag] = entry
        self.stats.hits += len(found)
        self.stats.misses += len(missing)
        if missing:
            for tag, array, meta in encode_missing(missing):
                found[tag] = self._store(keys[tag], array, meta)
        unfilled = [tag for tag in missing if tag not in found]
        if unfilled:
            raise RuntimeError(f"encode_missing left {len(unfilled)} of {len(missing)} missing entries unfilled")
        return found

    def _store(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> Entry:
        """Store one entry; returns what a later read returns (a memory map on disk)."""
        array = np.ascontiguousarray(array, dtype=DTYPE)
        meta = {**meta, "shape": list(array.shape), "dtype": str(array.dtype), "created": time.time()}
        if self.dir is None:
            self._memory[key] = (array, meta)
            return array, meta
        if not (self.dir / GROUP_FILE).is_file():
            write_text(self.dir / GROUP_FILE, json.dumps(self.group, indent=1, default=str))
        npy = self.dir / f"{key}.npy"
        # Serialised in memory (one entry: megabytes), so that a full disk fails in our write with its errno.
        buffer = io.BytesIO()
        np.save(buffer, array)
        write_bytes(npy, buffer.getvalue())
        try:
            write_text(self.dir / f"{key}.json", json.dumps(meta))
        except BaseException:
            npy.unlink(missing_ok=True)  # no array without its commit mark
            raise
        return np.load(npy, mmap_mode="r"), meta

    def size_bytes(self) -> int:
        if self.dir is None:
            return int(sum(array.nbytes for array, _ in self._memory.values()))
        return directory_bytes(self.dir)


def _entry_key(video: str | os.PathLike[str], view: dict[str, Any]) -> str:
    return _digest({"video": video_identity(video), "view": view})


def _read_entry(directory: Path, key: str) -> Entry | None:
    """The entry, or None if any part of it is missing, unreadable or disagrees with its metadata."""
    try:
        meta = json.loads((directory / f"{key}.json").read_text())
        array = np.load(directory / f"{key}.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if list(array.shape) != meta.get("shape") or str(array.dtype) != meta.get("dtype"):
        return None
    return array, meta


def directory_bytes(path: Path) -> int:
    return int(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))


def list_groups(root: Path) -> list[dict[str, Any]]:
    """One row per group: its id, description, entry count, bytes on disk and last write time."""
    rows = []
    for directory in sorted(p for p in Path(root).glob("*") if p.is_dir()) if Path(root).is_dir() else []:
        try:
            group = json.loads((directory / GROUP_FILE).read_text())
        except (OSError, ValueError):
            group = {}
        entries = list(directory.glob("*.npy"))
        files = [f for f in directory.iterdir() if f.is_file()]
        rows.append({"group": directory.name, "model": group.get("model", "?"), "kind": group.get("kind", "?"),
                     "frames_per_clip": group.get("frames_per_clip"), "frame_stride": group.get("frame_stride"),
                     "crop_size": group.get("crop_size"), "precision": group.get("precision"),
                     "entries": len(entries), "bytes": sum(f.stat().st_size for f in files),
                     "last_write": max((f.stat().st_mtime for f in files), default=None)})
    return rows


def clear(root: Path, *, older_than_seconds: float | None = None) -> tuple[int, int]:
    """Delete every entry (or those last written more than `older_than_seconds` ago): (entries, bytes) freed."""
    root = Path(root)
    if not root.is_dir():
        return 0, 0
    if older_than_seconds is None:
        entries, size = sum(g["entries"] for g in list_groups(root)), directory_bytes(root)
        shutil.rmtree(root)
        return entries, size
    cutoff = time.time() - older_than_seconds
    entries = size = 0
    for npy in root.glob("*/*.npy"):
        if npy.stat().st_mtime < cutoff:
            for part in (npy, npy.with_suffix(".json")):
                if part.is_file():
                    size += part.stat().st_size
                    part.unlink()
            entries += 1
    for directory in root.iterdir():
        if directory.is_dir() and not any(directory.glob("*.npy")):
            shutil.rmtree(directory)
    return entries, size
