"""What the commands over many videos share (`predict`, `embed`, `pretrain`): reading a set (`synthetic` or any
layout `vjepa_core.data.videosets` reads, probed before any work), and a `Tally` of what happened to each
video: one warning line per skipped file, then the summary line ("19 classified, 1 skipped: no video stream")
and the exit code (0 every video used, 1 some skipped, 2 none usable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from vjepa_core.errors import UserError

VIDEO_SET_HELP = ("a folder (every video under it, recursively; class or train/val/test folders keep their "
                  "labels), a glob ('clips/**/*.mp4', quoted), a list file (.txt: one path per line, relative "
                  "to the list) or a CSV manifest with a path column")


def read_videos(sources: str | Sequence[str], *, results: Path, decoder: str, progress: bool) -> Any:
    """The decodable videos of `sources` (`VideoSet`, skipped files in `.skipped`), `synthetic` being the
    built-in set; no decodable video: one error line (`NoDecodableVideos`)."""
    from vjepa_core.data import resolve_data
    from vjepa_core.data.videosets import read_video_set

    sources = [sources] if isinstance(sources, str) else list(sources)
    return read_video_set([resolve_data(source, results, progress=progress) for source in sources], decoder=decoder,
                          progress=progress)


def warn_skipped(path: str, reason: str) -> None:
    typer.secho(f"warning: skipped {path}: {reason}", err=True, fg="yellow")


class Tally:
    """Videos used and skipped by a command, and the warning line of each skipped one.

    A command warns as it goes (`skip(...)`) or, when every video could still fail a check that comes first,
    after it (`skip(..., warn=False)`, then `warn()` once something is usable): when nothing is, the
    command's only output is its one error line. With a single video, its failure is that line."""

    def __init__(self, total: int, *, verb: str, skipped: Sequence[tuple[str, str]] = ()) -> None:
        self.total, self.verb = total, verb
        self.done = 0
        self.skipped: list[tuple[str, str]] = list(skipped)
        self._warned = 0

    @property
    def single(self) -> bool:
        return self.total == 1

    def ok(self, count: int = 1) -> None:
        self.done += count

    def skip(self, path: str, reason: str, *, warn: bool = True) -> None:
        self.skipped.append((path, reason))
        if warn:
            self.warn()

    def warn(self) -> None:
        """One warning line for each skipped file not yet warned about."""
        for path, reason in self.skipped[self._warned:]:
            warn_skipped(path, reason)
        self._warned = len(self.skipped)

    def check_usable(self, what: str | None, *, usable: int | None = None) -> None:
        """None used (or `usable` left to use is 0): one error line, exit 2."""
        from vjepa_core.data.videosets import nothing_usable

        if not (self.done if usable is None else usable):
            raise UserError(nothing_usable(self.skipped, what=what, verb=self.verb))

    def summary(self) -> str:
        from vjepa_core.data.videosets import summary_line

        return summary_line(self.done, self.skipped, verb=self.verb)

    def exit(self) -> None:
        """End the command with 0 (all used) or 1 (some skipped)."""
        from vjepa_core.data.videosets import exit_code

        code = exit_code(self.done, self.skipped)
        if code:
            raise typer.Exit(code)
