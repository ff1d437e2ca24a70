"""Atomic files and folders written by real processes: writers racing for one folder, a writer killed with
SIGKILL mid-file, two processes generating one synthetic set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import leftovers
from vjepa_core.data.decode import probe_video
from vjepa_core.store import atomic

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
