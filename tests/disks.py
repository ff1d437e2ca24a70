"""A real small filesystem for the failure tests (and the disk-full benchmark): a tmpfs of a few KiB that
fills up. Mounting needs root; elsewhere `MountRefused` says why and the tests skip."""

from __future__ import annotations

import subprocess
from pathlib import Path


class MountRefused(RuntimeError):
    """This machine will not mount a tmpfs for us (not root, no `mount`)."""


class SmallDisk:
    """A real tmpfs of a few KiB: a disk that fills up. `resize` frees space without touching the files."""

    def __init__(self, path: Path, size_kib: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path))

    def resize(self, size_kib: int) -> None:
        self._mount("-o", f"remount,size={size_kib}k", str(self.path))

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file())

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)

    @staticmethod
    def _mount(*args: str) -> None:
        try:
            result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
        except FileNotFoundError as error:
            raise MountRefused("no `mount` command here") from error
        if result.returncode != 0:
            raise MountRefused(result.stderr.strip() or "mount refused (root needed)")
