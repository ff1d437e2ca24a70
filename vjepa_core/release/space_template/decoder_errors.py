"""What the Space app says of a video it cannot open: the standard library only.

Written by vjepa-lab's `runner release --space` beside `app.py`. (Which frames the app reads is the model's
own processor's rule: `model/video_processing_vjepa_lab.py`, loaded with `trust_remote_code=True`.)
"""

from __future__ import annotations

from pathlib import Path


def decoder_reason(error: Exception, file: Path) -> str:
    """FFmpeg's words from a torchcodec error, without its source location or the server-side path."""
    text = " ".join(str(error).split())
    reason = text.split(str(file), 1)[1] if str(file) in text else text.rsplit(", ", 1)[-1]
    return reason.strip(" :,") or type(error).__name__
