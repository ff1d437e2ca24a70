"""Is a process still running? The one rule every "is its writer / holder gone" question asks.

A pid alone does not name a process: once it exits, the kernel hands its number to the next
process started. So a process is named by its host, pid and start time, and it is alive only if
this machine runs a process with that pid that started at that time (within a second).

- `process_started(pid) -> float | None`: the start time of process `pid` in epoch seconds; None if
  there is none (or only a zombie); NaN if it exists but belongs to another user (start unknown).
- `pid_alive(pid, started=None) -> bool`: process `pid` runs on this machine and, when `started` is
  known, is the one that started then (a reused pid is not).
- `process_gone(pid, host, started=None) -> bool`: True only if the process ran on this machine and
  is no longer alive; another machine's process cannot be seen from here (False).

Used by the claims (`vjepa_core.store.claims`), the temporary-file sweep (`vjepa_core.store.atomic`)
and the dashboard's Live page. Imports psutil only.
"""

from __future__ import annotations

import math
import socket
from typing import Any

import psutil

# psutil's create_time and the one stored may differ by rounding; a reused pid starts much later.
START_SLACK = 1.0


def process_started(pid: int) -> float | None:
    """The start time of process `pid` (epoch seconds), or None if there is none (or only a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return float("nan")  # exists, owned by another user: alive, start unknown


def pid_alive(pid: Any, started: Any = None) -> bool:
    """Does process `pid` (started at `started`, when known) still run on this machine?"""
    actual = process_started(int(pid))
    if actual is None:
        return False
    if _unknown(started) or math.isnan(actual):  # no start time to compare: trust the pid
        return True
    return abs(actual - float(started)) <= START_SLACK


def process_gone(pid: Any, host: Any, started: Any = None) -> bool:
    """True only if `pid` ran on this machine and no process with that pid and start time runs now."""
    if _unknown(pid) or host != socket.gethostname():
        return False
    return not pid_alive(pid, started)


def _unknown(value: Any) -> bool:
    # None, NaN, or pandas' NA / NaT (what a NULL column gives back).
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA refuses a truth value
        return True
