"""SIGTERM inside a command: the command ends as on Ctrl-C, while a process a library forks from it still dies of
SIGTERM at once (a child stuck in C code would otherwise outlive the handler and hold its parent's exit)."""

from __future__ import annotations

import multiprocessing
import os
import signal

from runner.options import _terminate_as_interrupt


def _block_forever(ready: int, never: int) -> None:
    os.write(ready, b"1")
    os.read(never, 1)  # nothing is ever written


def test_a_forked_child_of_a_command_dies_of_sigterm() -> None:
    (ready_read, ready_write), (never_read, never_write) = os.pipe(), os.pipe()
    try:
        with _terminate_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            child = multiprocessing.get_context("fork").Process(target=_block_forever, args=(ready_write, never_read))
            child.start()
            assert os.read(ready_read, 1) == b"1"  # blocked in the read: a signal now finds it there
            child.terminate()
            child.join(10)
            if child.exitcode is None:
                child.kill()
                child.join()
        assert child.exitcode == -signal.SIGTERM  # killed by the signal, not a KeyboardInterrupt (exit code 1)
    finally:
        for end in (ready_read, ready_write, never_read, never_write):
            os.close(end)
