"""Atomic files and folders: a write lands whole under its final name, or leaves nothing behind.

A writer fills a temporary file or folder beside the target (`staged_file`, `staged_dir`), which is fsynced
and renamed into place on success and removed on any failure, Ctrl-C included; a disk that refuses the write
becomes `WriteFailed`, one line naming the path and what to do. Temporary names carry the writer's host, pid
and start time, so that `sweep` can remove what a killed writer left once that process is gone.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import math
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from vjepa_core.errors import WriteFailed
from vjepa_core.store.liveness import process_gone, process_started

TMP_MARK = ".tmp."
# Where results go when this disk is full: the runner's flag. Exports and the warehouse say their own.
RESULTS_ELSEWHERE = "pass --results (or VJEPA_RESULTS) on another disk"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Libraries that do their own I/O (safetensors' Rust writer, DuckDB) only keep the OS's words.
_NO_SPACE_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
_DENIED = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


def write_bytes(path: str | os.PathLike[str], data: bytes, *, elsewhere: str = RESULTS_ELSEWHERE) -> Path:
    with staged_file(path, elsewhere=elsewhere) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, *, elsewhere: str = RESULTS_ELSEWHERE) -> Path:
    return write_bytes(path, text.encode("utf-8"), elsewhere=elsewhere)


def staged_file(path: str | os.PathLike[str], *, elsewhere: str = RESULTS_ELSEWHERE) -> AbstractContextManager[Path]:
    """Yield a temporary path to write; on success it becomes `path`, on failure it is gone."""
    return _staged(Path(path), elsewhere, folder=False)


def staged_dir(path: str | os.PathLike[str], *, elsewhere: str = RESULTS_ELSEWHERE) -> AbstractContextManager[Path]:
    """Yield an empty temporary folder to fill; on success it becomes `path` (replacing an older one)."""
    return _staged(Path(path), elsewhere, folder=True)


@contextmanager
def _staged(path: Path, elsewhere: str, *, folder: bool) -> Iterator[Path]:
    tmp = temp_name(path)
    with _cleaned_up(tmp, path, elsewhere):
        path.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            sweep(path.parent)
            tmp.mkdir()
        yield tmp
        for item in sorted(tmp.rglob("*"), reverse=True) if folder else ():  # files before their folders
            _fsync(item)
        _fsync(tmp)
        if folder:
            _swap_in(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync(path.parent)


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside `path` that names this process (host, pid, start time)."""
    pid = os.getpid()
    started = _own_start(pid)
    stamp = f".t{round(started * 1000)}" if started is not None and not math.isnan(started) else ""
    return path.with_name(f".{path.name}{TMP_MARK}{socket.gethostname()}.{pid}{stamp}.{uuid.uuid4().hex[:12]}")


@functools.cache
def _own_start(pid: int) -> float | None:
    # Keyed by pid: a forked child asks again.
    return process_started(pid)


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and TMP_MARK in path.name


def sweep(folder: str | os.PathLike[str]) -> int:
    """Remove the temporary files and folders in `folder` whose writer is gone from this machine."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for entry in entries:
        if is_temp(entry) and _writer_gone(entry):
            _remove(entry)
            removed += 1
    return removed


@contextmanager
def exclusive(lock_file: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` (created if needed) for the block; waits for it."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def storage_failure(error: BaseException, path: Path, *, elsewhere: str = RESULTS_ELSEWHERE) -> WriteFailed | None:
    """`error` as a one-line `WriteFailed` if the disk caused it (full, quota, read-only, denied), else None."""
    if isinstance(error, WriteFailed):
        return error
    code = getattr(error, "errno", None)
    if code in _NO_SPACE or any(text in str(error) for text in _NO_SPACE_TEXT):
        return WriteFailed(f"no space left on the device writing {path}: free space there, or {elsewhere}")
    if code in _DENIED:
        return WriteFailed(f"cannot write {path}: {_DENIED[code]}; make {path.parent} writable, or {elsewhere}")
    return None


@contextmanager
def _cleaned_up(tmp: Path, path: Path, elsewhere: str) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        _remove(tmp)
        failure = storage_failure(error, path, elsewhere=elsewhere)
        if failure is not None and failure is not error:
            raise failure from error
        raise


def _swap_in(tmp: Path, path: Path) -> None:
    """Rename the filled folder `tmp` to `path`; an existing `path` is moved aside first, then removed.

    rename(2) replaces only an empty folder, so an older one is renamed to a temporary name (which
    `sweep` removes should the process die right there) before the new one takes its place.
    """
    for _ in range(10):  # another writer may swap between our two renames: try again
        old = temp_name(path)
        try:
            os.rename(path, old)
        except FileNotFoundError:
            old = None
        try:
            os.rename(tmp, path)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        finally:
            if old is not None:
                _remove(old)
        return
    raise OSError(errno.EEXIST, f"{path} kept being replaced by another writer")


def _writer_gone(entry: Path) -> bool:
    writer = _writer(entry)
    return writer is not None and process_gone(*writer)


def _writer(entry: Path) -> tuple[int, str, float | None] | None:
    """(pid, host, start time or None) from a temporary name, or None if it is not one of ours."""
    parts = entry.name.split(TMP_MARK, 1)[1].split(".")  # host (may hold dots), pid, [t<start ms>], random
    if len(parts) < 3:
        return None
    if len(parts) >= 4 and parts[-2].startswith("t") and parts[-2][1:].isdigit():
        host, pid, started = parts[:-3], parts[-3], int(parts[-2][1:]) / 1000
    else:  # an older name, without the start time: the pid alone decides
        host, pid, started = parts[:-2], parts[-2], None
    if not pid.isdigit():
        return None
    return int(pid), ".".join(host), started


def _fsync(path: Path) -> None:
    # Folders need fsync too: a rename is durable only once the folder holding it is.
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: a failure here must not hide the error that brought us here
