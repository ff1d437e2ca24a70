"""Progress that shows in a terminal and in a log file alike.

`progress_bar` is a tqdm bar when stderr is a terminal; elsewhere (nohup, CI, a Ray worker, `> log`) it prints
plain lines such as "encode: 40/168 clips (24%), 12 s elapsed, ~38 s left" each tenth of the work or every
`EVERY_SECONDS` (a heartbeat thread keeps that promise through one long step), and only for work expected to
take that long, so that quick inner loops print nothing and a matrix does not flood the log.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm

EVERY_SECONDS = 30.0  # the longest silence in a log while work goes on
MIN_SECONDS = 2.0  # no line (but the last) for work shorter than this, nor two lines closer than this
STEPS = 10  # a line at every tenth of the total


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, leave: bool = False, stream: TextIO | None = None, **tqdm_args: Any) -> Any:
    """A tqdm bar on a terminal, a `LogProgress` elsewhere; with `enabled=False`, a silent counter."""
    stream = stream or sys.stderr
    if enabled and _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream, **tqdm_args)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return LogProgress(iterable, total=total, desc=desc, unit=unit, enabled=enabled, leave=leave, stream=stream,
                       initial=tqdm_args.get("initial", 0))


def progress_write(text: str, *, stream: TextIO | None = None) -> None:
    """One line of output that does not break a bar on a terminal."""
    stream = stream or sys.stderr
    if _is_terminal(stream):
        tqdm.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class LogProgress:
    """The part of tqdm's interface this project uses, printed as plain lines at a sane rate."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None, desc: str, unit: str,
                 enabled: bool = True, leave: bool = True, stream: TextIO | None = None, initial: int = 0) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.enabled, self.leave, self.stream = enabled, leave, stream or sys.stderr
        self.lines: list[str] = []  # what was (or, disabled, would have been) printed
        self.n = self._start = initial
        self.postfix = ""
        self._t0 = self._last_line = time.monotonic()
        self._last_step = self._step(initial)
        self._emitted_n = initial
        self._closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if enabled:
            threading.Thread(target=self._heartbeat, name=f"progress:{desc}", daemon=True).start()

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "LogProgress without an iterable cannot be iterated"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            now = time.monotonic()
            step = self._step(self.n)
            crossed = step > self._last_step and now - self._last_line >= MIN_SECONDS and self._long(now)
            if crossed or now - self._last_line >= EVERY_SECONDS:
                self._emit(now)
                self._last_step = step

    def _heartbeat(self) -> None:
        while not self._stop.wait(EVERY_SECONDS / 3):
            with self._lock:
                now = time.monotonic()
                if now - self._last_line >= EVERY_SECONDS and not self._closed:
                    self._emit(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self.n != self._emitted_n and (self.leave or self.lines):
                self._emit(time.monotonic(), final=True)

    def line(self, now: float, *, final: bool = False) -> str:
        """`desc: n/total unit (pct%), elapsed, ~left[, postfix]`: what the log shows."""
        elapsed = now - self._t0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {done} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{_duration(elapsed)} elapsed")
        rate = (self.n - self._start) / elapsed if elapsed > 0 else 0.0
        if not final and self.total and rate > 0 and self.n < self.total:
            parts.append(f"~{_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _emit(self, now: float, *, final: bool = False) -> None:
        self._last_line, self._emitted_n = now, self.n
        self.lines.append(self.line(now, final=final))
        if self.enabled:
            print(self.lines[-1], file=self.stream, flush=True)

    def _long(self, now: float) -> bool:
        """Whether the whole work is expected to take EVERY_SECONDS or more, at the rate seen so far."""
        elapsed, done = now - self._t0, self.n - self._start
        if not self.total or done <= 0:
            return elapsed >= EVERY_SECONDS
        return elapsed * (self.total - self._start) / done >= EVERY_SECONDS

    def _step(self, n: int) -> int:
        return STEPS * n // self.total if self.total else 0


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
