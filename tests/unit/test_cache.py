"""The frozen-backbone token cache, entry by entry: a changed input misses; corrupt or partial entries are
ignored and rebuilt. (Reuse across real runs: tests/integration/test_cache_runs.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vjepa_core.store.cache import TokenCache, clear


@pytest.mark.parametrize("change", ["frames", "stride", "weights", "mtime"])
def test_a_changed_input_misses(change: str, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not decoded here, only identified")
    group = {"kind": "tokens", "encoder": "abc", "frames_per_clip": 8, "frame_stride": 2}
    view = {"kind": "eval", "clip": 0}
    cache = TokenCache(tmp_path / "cache", group)
    cache.put(cache.key(video, view), np.ones((4, 3)), {"flipped": False})
    if change == "mtime":
        os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    changed = {"frames": {**group, "frames_per_clip": 16}, "stride": {**group, "frame_stride": 3},
               "weights": {**group, "encoder": "abd"}, "mtime": group}[change]
    other = TokenCache(tmp_path / "cache", changed)
    assert other.get(other.key(video, view)) is None and other.stats.misses == 1
    if change != "mtime":  # the unchanged group still hits
        assert cache.get(cache.key(video, view)) is not None


def test_corrupt_or_partial_entries_are_ignored_and_rebuilt(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    cache = TokenCache(tmp_path / "cache", {"kind": "tokens"})
    keys = [cache.key(video, {"view": i}) for i in range(3)]
    for key in keys:
        cache.put(key, np.full((5, 2), 0.5), {})
    (cache.dir / f"{keys[0]}.npy").write_bytes(b"\x93NUMPY garbage")      # corrupt array
    (cache.dir / f"{keys[1]}.json").unlink()                               # a write that died before its commit mark
    npy = cache.dir / f"{keys[2]}.npy"
    npy.write_bytes(npy.read_bytes()[:-8])                                 # truncated array
    assert [cache.get(key) for key in keys] == [None, None, None]
    rebuilt = cache.put(keys[0], np.full((5, 2), 0.25), {})
    array, meta = cache.get(keys[0])
    assert np.array_equal(array, rebuilt) and float(array[0, 0]) == 0.25 and meta["shape"] == [5, 2]
    assert clear(tmp_path / "cache")[0] == 3 and not (tmp_path / "cache").exists()
