"""Is a process still running? The one rule the claims, the temporary-file sweep and the dashboard ask.

A pid alone does not name a process (the kernel reuses numbers), so a process is named by host, pid and start
time, and is alive only if this machine runs a process with that pid that started then. Another machine's
process cannot be seen from here. Imports psutil only.
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
