"""Atomic files and folders: whole or absent, on a real filesystem, a real full disk and real killed writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from vjepa_core.data.decode import probe_video
from vjepa_core.errors import WriteFailed
from vjepa_core.store import atomic
from vjepa_core.store.cache import TokenCache
from vjepa_core.store.warehouse import RunRecord, Warehouse


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if atomic.is_temp(p))


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


SWAPPER = """
import sys
from pathlib import Path
from vjepa_core.store import atomic
for i in range(25):
    with atomic.staged_dir(Path(sys.argv[1])) as tmp:
        for name in ("manifest.json", "trained.safetensors", "adapter"):
            (tmp / name).write_text(f"{sys.argv[2]}-{i}")
"""


def test_writers_racing_for_one_folder_leave_one_whole_version(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "run"
    writers = [subprocess.Popen([sys.executable, "-c", SWAPPER, str(target), f"w{n}"], stderr=subprocess.PIPE,
                                text=True) for n in range(3)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    versions = {p.read_text() for p in target.iterdir()}
    assert len(versions) == 1 and versions.pop().endswith("-24")  # one writer's last version, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["run"]  # no temporary or displaced folder


def test_sweep_removes_what_a_killed_writer_left_and_nothing_else(tmp_path: Path) -> None:
    # A real writer, killed with SIGKILL in the middle of its temporary file.
    code = ("import sys, time; from vjepa_core.store import atomic\n"
            "with atomic.staged_file(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'x' * 1000); print('writing', flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "entry.npy")], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    killed = leftovers(tmp_path)
    assert len(killed) == 1 and f".{writer.pid}." in killed[0]
    ours = atomic.temp_name(tmp_path / "live.npy")  # this process: alive, so still at work
    ours.write_bytes(b"y")
    elsewhere = tmp_path / ".x.npy.tmp.another-host.1.abc"  # another machine's writer: unknowable here
    elsewhere.write_bytes(b"z")
    (tmp_path / ".hidden").write_text("not ours")

    assert atomic.sweep(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, elsewhere.name, ".hidden"])


def test_two_processes_generating_one_synthetic_set_take_turns(tmp_path: Path) -> None:
    code = ("import sys; from vjepa_core.data.synthetic import make_synthetic\n"
            "make_synthetic(sys.argv[1], classes=('up', 'left'), videos_per_class=3, height=32, width=48,"
            " num_frames=8)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "syn")], stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    videos = sorted((tmp_path / "syn").glob("*/*.*"))
    assert len(videos) == 6 and all(probe_video(v).num_frames == 8 for v in videos)
    assert json.loads((tmp_path / "syn" / "synthetic.json").read_text())["complete"] is True
    assert leftovers(tmp_path) == []


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
    with pytest.raises(WriteFailed, match=f"writing {disk.path / 'cache'}/.*: free space there"):
        for view in range(100):
            cache.put(cache.key(video, {"view": view}), np.ones((64, 128)), {})
            stored += 1
    assert 0 < stored < 100
    names = [p.name for p in disk.files()]
    assert sorted(n for n in names if n.endswith(".npy")) == sorted(n.replace(".json", ".npy") for n in names
                                                                    if n.endswith(".json") and n != "group.json")
    assert all(cache.get(cache.key(video, {"view": view})) is not None for view in range(stored))


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
