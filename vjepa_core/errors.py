"""Errors a user can fix. The CLI prints their message as one line and exits with code 2."""


class UserError(ValueError):
    """Bad input: a missing folder, an unknown strategy, an impossible hyper-parameter, ..."""


class VideoDecodeError(UserError):
    """A video file that cannot be opened or decoded (zero bytes, corrupt, not a video)."""
