"""`--results` on a real, full disk (a small tmpfs), through benchmarks/disk_full.py: the run fails with one
line naming the path and the remedy, exit code 1, no traceback, no temporary or half-written file; once
space is freed the same command succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.disk_full import scenario
from tests.disks import MountRefused

REMEDY = "free space there, or pass --results (or VJEPA_RESULTS) on another disk"


def full_disk(name: str, data: Path, work: Path) -> dict:
    try:
        return scenario(name, data, work)
    except MountRefused as refused:
        pytest.skip(f"cannot mount a small tmpfs here ({refused}): the disk-full tests need root")


def test_disk_full_while_filling_the_cache(tmp_path: Path, synthetic_small: Path) -> None:
    figures = full_disk("cache fill", synthetic_small, tmp_path)
    assert (figures["exit"], figures["traceback"], figures["leftover_temp_files"]) == (1, False, 0)
    (line,) = figures["output_lines"]  # one line, nothing else
    assert f"failed: no space left on the device writing {tmp_path / 'disk' / 'cache'}/" in line
    assert line.endswith(REMEDY)
    assert figures["failed_rows"] == 1 and figures["error_kind"] == ["storage"] and figures["reason"][0] in line
    assert figures["cache_entries_kept"] > 0  # what fitted stays, whole
    assert (figures["rerun_exit"], figures["rerun_status"], figures["rerun_rows"]) == (0, "success", 1)
    assert figures["rerun_cache_hits"] >= figures["cache_entries_kept"]  # the entries written before served
    assert figures["rerun_checkpoint"] and figures["leftover_temp_files_after_rerun"] == 0


def test_disk_full_while_writing_the_checkpoint(tmp_path: Path, synthetic_small: Path) -> None:
    figures = full_disk("checkpoint write", synthetic_small, tmp_path)
    assert (figures["exit"], figures["traceback"], figures["leftover_temp_files"]) == (1, False, 0)
    (run_line,) = [line for line in figures["output_lines"] if " failed: " in line]
    assert f"no space left on the device writing {tmp_path / 'disk' / 'checkpoints'}/" in run_line
    assert run_line.endswith(REMEDY)
    assert any("1 run(s): 1 ran, 0 skipped (already done), 1 failed" in line for line in figures["output_lines"])
    assert figures["failed_rows"] == 1 and figures["error_kind"] == ["storage"]
    # No --retry-failed: a full disk is no reason to skip the run once space is freed.
    assert (figures["rerun_exit"], figures["rerun_status"], figures["rerun_rows"]) == (0, "success", 1)
    assert figures["rerun_checkpoint"] and figures["leftover_temp_files_after_rerun"] == 0
