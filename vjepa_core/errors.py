"""Errors a user can fix. The CLI prints their message as one line and exits with code 2.

`error_message(error)` is the one line a failed run's row keeps, for any exception.

An error keeps its `reason` apart from its subject, so that a caller who names the subject its own way
(the demo says `clip.mp4`, not the server's temporary path) adds its words to the reason without
repeating what the message already says.
"""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterable
from pathlib import Path


class UserError(ValueError):
    """Bad input: a missing folder, an unknown strategy, an impossible hyper-parameter, ..."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class VideoDecodeError(UserError):
    """A video file that cannot be opened or decoded (zero bytes, corrupt, not a video): `<path>: <reason>`."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}", reason=reason)
        self.path = str(path)


class CheckpointError(UserError):
    """A checkpoint folder that cannot be read or does not fit its base model: `checkpoint: <reason>`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"checkpoint: {reason}", reason=reason)


class WriteFailed(Exception):
    """The disk refused a write: full, over quota, read-only, no permission.

    Not bad input (a run that meets it is recorded as failed, exit code 1), but a user can fix it:
    its message is one line naming the path and the remedy, shown without a traceback.
    """


def error_message(error: BaseException) -> str:
    """One line: the message alone when a user can act on it (UserError, WriteFailed), else with the type."""
    if isinstance(error, UserError | WriteFailed):
        return str(error)
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def did_you_mean(names: Iterable[str], known: Iterable[str]) -> str:
    """'; did you mean frames_per_clip?' for misspelt or shortened `names`, or '' when nothing is close."""
    known = list(known)
    guesses = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
        longer = [k for k in known if k.startswith(name)]
        guess = close[0] if close else (longer[0] if len(longer) == 1 else None)
        if guess and guess not in guesses:
            guesses.append(guess)
    return f"; did you mean {' or '.join(guesses)}?" if guesses else ""
