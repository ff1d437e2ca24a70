"""The frozen-backbone token cache, entry by entry: `fetch` reads what it holds and encodes only the rest; a
changed input misses; corrupt or partial entries are ignored and rebuilt. (Reuse across real runs:
tests/integration/test_cache_runs.py.)"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import pan_video
from vjepa_core.store.cache import TokenCache, clear, video_identity


@pytest.mark.parametrize("on_disk", [True, False])
def test_fetch_reads_what_it_holds_and_encodes_only_the_rest(tmp_path: Path, on_disk: bool) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    cache = TokenCache(tmp_path / "cache" if on_disk else None, {"kind": "tokens"})
    asked: list[list[int]] = []

    def encode(missing: list[int]) -> Iterator[tuple[int, np.ndarray, dict]]:
        asked.append(list(missing))
        for tag in missing:
            yield tag, np.full((2, 3), tag, dtype=np.float32), {"tag": tag}

    cache.fetch({tag: (video, {"view": tag}) for tag in (0, 1)}, encode_missing=encode)
    both = cache.fetch({tag: (video, {"view": tag}) for tag in (0, 1, 2)}, encode_missing=encode)
    assert asked == [[0, 1], [2]]  # one call per fetch, with only what was missing
    assert {tag: float(array[0, 0]) for tag, (array, _) in both.items()} == {0: 0.0, 1: 1.0, 2: 2.0}
    assert both[1][1]["tag"] == 1 and both[1][1]["shape"] == [2, 3] and both[1][0].dtype == np.float16
    assert (cache.stats.hits, cache.stats.misses) == (2, 3)
    cache.fetch({0: (video, {"view": 0})}, encode_missing=encode)
    assert asked == [[0, 1], [2]]  # everything held: nothing to encode
    with pytest.raises(RuntimeError, match="left 1 of 1 missing"):
        cache.fetch({9: (video, {"view": 9})}, encode_missing=lambda missing: iter(()))


def made_of(value: float, shape: tuple[int, ...] = (5, 2)) -> Callable[[list[int]], Iterator[tuple]]:
    """An `encode_missing` that makes each missing entry an array of `value`, with its tag as `view`."""
    def encode(missing: list[int]) -> Iterator[tuple[int, np.ndarray, dict]]:
        for tag in missing:
            yield tag, np.full(shape, value), {"view": tag}
    return encode


@pytest.mark.parametrize("change", ["frames", "stride", "weights", "mtime"])
def test_a_changed_input_misses(change: str, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not decoded here, only identified")
    group = {"kind": "tokens", "encoder": "abc", "frames_per_clip": 8, "frame_stride": 2}
    view = {"kind": "eval", "clip": 0}
    cache = TokenCache(tmp_path / "cache", group)
    cache.fetch({0: (video, view)}, encode_missing=made_of(1.0, (4, 3)))
    if change == "mtime":
        os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    changed = {"frames": {**group, "frames_per_clip": 16}, "stride": {**group, "frame_stride": 3},
               "weights": {**group, "encoder": "abd"}, "mtime": group}[change]
    other = TokenCache(tmp_path / "cache", changed)
    made = other.fetch({0: (video, view)}, encode_missing=made_of(2.0, (4, 3)))
    assert other.stats.hits == 0 and other.stats.misses == 1 and float(made[0][0][0, 0]) == 2.0
    if change != "mtime":  # the unchanged group still hits
        held = cache.fetch({0: (video, view)}, encode_missing=made_of(3.0, (4, 3)))
        assert cache.stats.hits == 1 and float(held[0][0][0, 0]) == 1.0


def test_a_file_decord_misreads_has_a_key_of_its_own(tmp_path: Path) -> None:
    """Its tokens were once encoded from decord's wrong frames: they are encoded again, from PyAV's. Every other
    file keeps the key it had, so the caches made before stay valid."""
    closed = pan_video(tmp_path / "closed.mp4", 100)
    opened = pan_video(tmp_path / "open.mp4", 100, **{"open-gop": "1"})
    assert set(video_identity(closed)) == {"path", "size", "mtime_ns"}
    assert video_identity(opened)["reader"] == "pyav"


def test_corrupt_or_partial_entries_are_ignored_and_rebuilt(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    cache = TokenCache(tmp_path / "cache", {"kind": "tokens"})
    wanted = {i: (video, {"view": i}) for i in range(3)}
    cache.fetch(wanted, encode_missing=made_of(0.5))
    entry = {json.loads(f.read_text())["view"]: f.stem for f in cache.dir.glob("*.json") if f.name != "group.json"}
    (cache.dir / f"{entry[0]}.npy").write_bytes(b"\x93NUMPY garbage")      # corrupt array
    (cache.dir / f"{entry[1]}.json").unlink()                               # a write that died before its commit mark
    npy = cache.dir / f"{entry[2]}.npy"
    npy.write_bytes(npy.read_bytes()[:-8])                                  # truncated array
    rebuilt = cache.fetch(wanted, encode_missing=made_of(0.25))
    assert (cache.stats.hits, cache.stats.misses) == (0, 6)  # every broken entry was a miss, and was rebuilt
    array, meta = TokenCache(tmp_path / "cache", {"kind": "tokens"}).fetch({0: wanted[0]},
                                                                          encode_missing=made_of(9.0))[0]
    assert np.array_equal(array, rebuilt[0][0]) and float(array[0, 0]) == 0.25 and meta["shape"] == [5, 2]
    assert clear(tmp_path / "cache")[0] == 3 and not (tmp_path / "cache").exists()
