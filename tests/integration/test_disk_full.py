"""`--results` on a real, full disk (a small tmpfs): the run fails with one line naming the path and the
remedy, exit code 1, no traceback, no temporary or half-written file; once space is freed the same
command succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from vjepa_core.store.atomic import is_temp
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.store.warehouse import Warehouse

FAST = ["--model", "tiny", "--epochs", "1", "--batch-size", "4", "--train-views", "1", "--frames-per-clip", "8"]


def runner(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VJEPA_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def debris(root: Path) -> list[Path]:
    """Temporary files, and cache arrays without their commit mark."""
    found = [p for p in root.rglob("*") if is_temp(p)]
    found += [p for p in root.glob("cache/*/*.npy") if not p.with_suffix(".json").is_file()]
    return found


def test_disk_full_while_filling_the_cache(tmp_path: Path, synthetic_small: Path, small_disk) -> None:  # noqa: ANN001
    disk = small_disk(128)  # a few cache entries fit, not all of them
    args = ["run", "--data", synthetic_small, "--strategy", "pooler_head", *FAST,
            "--warehouse", tmp_path / "w.duckdb", "--results", disk.path, "-q"]
    failed = runner(*args)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    lines = [line for line in (failed.stdout + failed.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"failed: no space left on the device writing {disk.path / 'cache'}/" in lines[0]
    assert lines[0].endswith("free space there, or pass --results (or VJEPA_RESULTS) on another disk")
    assert debris(disk.path) == []
    assert list(disk.path.glob("cache/*/*.npy"))  # what fitted stays, whole
    runs = Warehouse(tmp_path / "w.duckdb").runs()
    assert len(runs) == 1 and runs["status"].iloc[0] == "failed" and runs["error_kind"].iloc[0] == "storage"
    assert runs["error"].iloc[0] in lines[0]

    disk.resize(16 * 1024)
    again = runner(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    run = Warehouse(tmp_path / "w.duckdb").runs().iloc[0]
    assert (run["status"], run["run_id"]) == ("success", runs["run_id"].iloc[0])
    assert 0 < run["cache_hits"] < run["cache_hits"] + run["cache_misses"]  # the entries written before were used
    assert debris(disk.path) == []


def test_disk_full_while_writing_the_checkpoint(tmp_path: Path, synthetic_small: Path, small_disk) -> None:  # noqa: ANN001
    spec = tmp_path / "one.yaml"
    spec.write_text(yaml.safe_dump({"name": "one", "base": {
        "data": str(synthetic_small), "strategy": "pooler_head", "model": "tiny", "epochs": 1, "batch_size": 4,
        "train_views": 1, "frames_per_clip": 8}}))
    disk = small_disk(1024)  # the cache (~0.4 MB) fits, the pooler's weights (~1.5 MB) do not
    args = ["run-matrix", spec, "--warehouse", tmp_path / "w.duckdb", "--results", disk.path, "-q"]
    failed = runner(*args)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    run_line = [line for line in (failed.stdout + failed.stderr).splitlines() if " failed: " in line]
    assert len(run_line) == 1
    assert f"no space left on the device writing {disk.path / 'checkpoints'}/" in run_line[0]
    assert "1 run(s): 1 ran, 0 skipped (already done), 1 failed" in failed.stdout
    assert debris(disk.path) == [] and list((disk.path / "checkpoints").glob("*")) == []
    runs = Warehouse(tmp_path / "w.duckdb").runs()
    assert list(runs["status"]) == ["failed"] and list(runs["error_kind"]) == ["storage"]

    disk.resize(16 * 1024)
    again = runner(*args)  # no --retry-failed: a full disk is no reason to skip the run
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 run(s): 1 ran, 0 skipped (already done), 0 failed" in again.stdout
    run = Warehouse(tmp_path / "w.duckdb").runs().iloc[0]
    assert run["status"] == "success" and run["encoded_clips"] == 0  # the cache written before the failure served
    assert load_checkpoint(Path(run["checkpoint_path"])).manifest["run_id"] == run["run_id"]
    assert debris(disk.path) == []
