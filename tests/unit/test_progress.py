"""Progress in a log file: plain lines every tenth or every 30 s, never a flood; bars on a terminal."""

from __future__ import annotations

import io
import threading

import pytest
from tqdm.auto import tqdm

from vjepa_core import progress
from vjepa_core.progress import LogProgress, progress_bar, progress_write


class Clock:
    """A clock the test moves by hand: the line rate depends on elapsed time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    return clock


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(bar: LogProgress, clock: Clock, steps: int, seconds_each: float) -> None:
    for _ in range(steps):
        clock.now += seconds_each
        bar.update(1)
    bar.close()


def test_a_log_gets_a_line_every_tenth(clock: Clock) -> None:
    out = io.StringIO()
    bar = progress_bar(total=100, desc="encode", unit="clips", stream=out)
    assert isinstance(bar, LogProgress)
    run(bar, clock, 100, 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "encode: 10/100 clips (10%), 10 s elapsed, ~1 min 30 s left"
    assert lines[-1] == "encode: 100/100 clips (100%), 1 min 40 s elapsed"


def test_slow_work_gets_a_line_every_30_seconds(clock: Clock) -> None:
    out = io.StringIO()
    bar = progress_bar(total=1000, desc="epoch 1/2", unit="steps", stream=out)
    run(bar, clock, 4, 40.0)  # 0.4% done: no tenth crossed, but 40 s of silence each time
    assert out.getvalue().splitlines() == [
        "epoch 1/2: 1/1000 steps (0%), 40 s elapsed, ~11 h 06 min left",
        "epoch 1/2: 2/1000 steps (0%), 1 min 20 s elapsed, ~11 h 05 min left",
        "epoch 1/2: 3/1000 steps (0%), 2 min 00 s elapsed, ~11 h 04 min left",
        "epoch 1/2: 4/1000 steps (0%), 2 min 40 s elapsed, ~11 h 04 min left",
    ]


def test_quick_loops_stay_quiet_unless_kept(clock: Clock) -> None:
    quiet, kept = io.StringIO(), io.StringIO()
    run(progress_bar(total=50, desc="epoch 3/40", stream=quiet), clock, 50, 0.01)
    run(progress_bar(total=50, desc="matrix", unit="runs", leave=True, stream=kept), clock, 50, 0.01)
    assert quiet.getvalue() == ""
    assert kept.getvalue() == "matrix: 50/50 runs (100%), 0 s elapsed\n"


def test_iterating_counts_and_postfix_shows(clock: Clock) -> None:
    out = io.StringIO()
    bar = progress_bar(range(20), desc="epoch 1/1", unit="steps", stream=out)
    for _ in bar:
        clock.now += 3.0
        bar.set_postfix(loss="0.512", acc="0.40")
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch 1/1: 2/20 steps (10%), 6 s elapsed, ~54 s left, loss 0.512, acc 0.40"
    assert lines[-1].startswith("epoch 1/1: 20/20 steps (100%), 1 min 00 s elapsed")


def test_disabled_prints_nothing_and_a_terminal_gets_tqdm(clock: Clock) -> None:
    out = io.StringIO()
    run(progress_bar(total=10, desc="x", enabled=False, leave=True, stream=out), clock, 10, 5.0)
    assert out.getvalue() == ""
    terminal = Terminal()
    bar = progress_bar(total=10, desc="x", stream=terminal)
    assert isinstance(bar, tqdm)
    bar.close()
    progress_write("epoch 1: done", stream=out)
    assert out.getvalue() == "epoch 1: done\n"


def test_short_work_reports_no_tenths(clock: Clock) -> None:
    """A 3-step epoch of 4 s: its tenths are noise in a log (the epoch's summary line says enough)."""
    out = io.StringIO()
    run(progress_bar(total=3, desc="epoch 1/3", unit="steps", stream=out), clock, 3, 1.5)
    assert out.getvalue() == ""


def test_a_step_longer_than_30_seconds_still_gets_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat speaks while the caller is stuck in one long step (real time, scaled down)."""
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.3)
    out = io.StringIO()
    bar = progress_bar(total=168, desc="encode", unit="clips", stream=out)
    threading.Event().wait(1.0)  # one batch of a big encoder on a CPU: no update for a while
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("encode: 0/168 clips (0%), ") for line in lines)
