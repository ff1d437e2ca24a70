"""Atomic files and folders: whole or absent, on a real filesystem and a real full disk.
(Writers in other processes, racing or killed: tests/integration/test_atomic_processes.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.support import leftovers
from vjepa_core.errors import WriteFailed
from vjepa_core.store import atomic
from vjepa_core.store.cache import TokenCache
from vjepa_core.store.warehouse import RunRecord, Warehouse


def test_write_bytes_replaces_whole_and_a_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.bin"
    atomic.write_bytes(target, b"old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]
    for error in (RuntimeError("encoder crashed"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic.staged_file(target) as tmp:
            tmp.write_bytes(b"half of it")
            raise error
        assert target.read_text() == "new" and leftovers(tmp_path) == []


def test_staged_dir_swaps_a_whole_folder_in_and_keeps_the_old_one_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    for version in ("1", "2"):
        with atomic.staged_dir(target) as tmp:
            (tmp / "weights").write_text(version)
            (tmp / "adapter").mkdir()
            (tmp / "adapter" / "config.json").write_text(version)
    assert (target / "weights").read_text() == "2" and (target / "adapter" / "config.json").read_text() == "2"
    with pytest.raises(ValueError), atomic.staged_dir(target) as tmp:
        (tmp / "weights").write_text("3")
        raise ValueError("training diverged")
    assert (target / "weights").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_full_disk_is_one_line_naming_the_path_and_leaves_nothing(small_disk) -> None:  # noqa: ANN001
    disk = small_disk(64)
    with pytest.raises(WriteFailed) as failure:
        atomic.write_bytes(disk.path / "big.bin", b"x" * 200_000)
    message = str(failure.value)
    assert message == (f"no space left on the device writing {disk.path / 'big.bin'}: free space there, "
                       "or pass --results (or VJEPA_RESULTS) on another disk")
    assert disk.files() == []
    with pytest.raises(WriteFailed), atomic.staged_dir(disk.path / "ckpt") as tmp:
        (tmp / "small.json").write_text("{}")
        (tmp / "weights").write_bytes(b"x" * 200_000)  # a third-party writer: plain OSError(ENOSPC)
    assert list(disk.path.iterdir()) == []


def test_a_cache_entry_that_does_not_fit_leaves_no_half_entry(small_disk, tmp_path: Path) -> None:  # noqa: ANN001
    disk = small_disk(96)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    cache = TokenCache(disk.path / "cache", {"kind": "tokens"})
    stored = 0

    def encode(missing: list[int]) -> Iterator[tuple[int, np.ndarray, dict]]:
        nonlocal stored
        for view in missing:
            yield view, np.ones((64, 128)), {}
            stored += 1  # the cache stored it before asking for the next one

    with pytest.raises(WriteFailed, match=f"writing {disk.path / 'cache'}/.*: free space there"):
        cache.fetch({view: (video, {"view": view}) for view in range(100)}, encode_missing=encode)
    assert 0 < stored < 100
    names = [p.name for p in disk.files()]
    assert sorted(n for n in names if n.endswith(".npy")) == sorted(n.replace(".json", ".npy") for n in names
                                                                    if n.endswith(".json") and n != "group.json")
    held = cache.fetch({view: (video, {"view": view}) for view in range(stored)}, encode_missing=refuse)
    assert sorted(held) == list(range(stored)) and cache.stats.hits == stored  # every finished entry is whole


def refuse(missing: list[int]) -> Iterator[tuple[int, np.ndarray, dict]]:
    raise AssertionError(f"{len(missing)} entries should have been in the cache")


def test_export_to_a_full_disk_leaves_no_file(small_disk, tmp_path: Path) -> None:  # noqa: ANN001
    store = Warehouse(tmp_path / "w.duckdb")
    rows = [{"run_id": "r", "split": "test", "video": f"/videos/clip_{i:05d}.mp4", "true_class": "up",
             "pred_class": "down", "confidence": 0.5} for i in range(5000)]
    store.write_run(RunRecord(run={"run_id": "r", "status": "success"}, predictions=rows))
    disk = small_disk(64)
    with pytest.raises(WriteFailed, match=f"writing {disk.path / 'out'}/.*: free space there, or pass --out"):
        store.export(disk.path / "out", "csv")
    assert list(disk.path.iterdir()) == []
    disk.resize(4096)
    paths = store.export(disk.path / "out", "csv")
    count = duckdb.execute("SELECT count(*) FROM read_csv_auto(?)", [str(paths[4])]).fetchall()[0][0]
    assert paths[4].name == "predictions.csv" and count == 5000


def test_a_warehouse_on_a_full_disk_fails_with_one_line(small_disk) -> None:  # noqa: ANN001
    disk = small_disk(256)
    store = Warehouse(disk.path / "w.duckdb")
    store.write_run(RunRecord(run={"run_id": "r0", "status": "success"}))
    rows = [{"run_id": "r1", "split": "test", "video": f"/videos/{i:06d}-{'x' * 80}.mp4", "confidence": i / 1e5}
            for i in range(40_000)]
    started = time.monotonic()
    with pytest.raises(WriteFailed, match="writing .*w.duckdb: free space there, or pass --warehouse"):
        store.write_run(RunRecord(run={"run_id": "r1", "status": "success"}, predictions=rows))
    assert time.monotonic() - started < 30
    disk.resize(65536)
    assert store.completed_run_ids() == {"r0"}  # the failed write left the earlier state
