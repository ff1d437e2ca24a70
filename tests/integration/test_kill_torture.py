"""The kill torture (benchmarks/kill_torture.py) as a test: a real matrix killed with SIGKILL twice in each
phase of a run (decode, encode, train, checkpoint write, warehouse write), resumed after each, then
audited: nothing lost, nothing twice, nothing orphaned, nothing unreadable, no debris, no claims left.
Kept small (4 classes x 4 short videos, 2 epochs, 6 runs): most of its time is 11 runner start-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.kill_torture import PHASES, torture
from vjepa_core.data.synthetic import make_synthetic


@pytest.mark.slow
def test_ten_kills_in_every_phase_lose_and_leave_nothing(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", classes=("up", "down", "left", "right"), videos_per_class=4,
                          num_frames=24)
    lines: list[str] = []
    figures = torture(data, tmp_path, kills=10, seed=13, frames=[4, 8], epochs=2, log=lines.append)
    assert figures["phases_hit"] == dict.fromkeys(PHASES, 2), "\n".join(lines)
    assert figures["kills"] == 10 and figures["took_over_claims"] >= 8  # most kills leave a run in flight
    assert figures["resume_exit"] == 0 and figures["resume"]["failed"] == 0
    assert figures["expected"] == figures["success"] == figures["checkpoints"] == 6
    for count in ("lost", "extra_runs", "duplicate_rows", "orphan_rows", "unreadable_checkpoints", "temp_files",
                  "unreadable_cache_entries", "stray_cache_arrays", "claims_left"):
        assert figures[count] == 0, (count, figures)
    assert figures["cache_entries"] > 0
