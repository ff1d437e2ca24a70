"""Read frames from video files with decord or PyAV: `read_frames(path, indices)` -> uint8 [T, H, W, 3] RGB in the
order asked, `iter_frames` one frame at a time for videos too long to hold, `probe_video` -> `VideoInfo`. Both
decoders count frames alike (one per video packet), so a clip planned with one reads the same with the other, and
"auto" takes decord where it reads right and PyAV for the rest (MPEG program and transport streams, open GOPs). PyAV
seeks to a keyframe before the frames asked for where the file's timestamps allow, else decodes from the start. Both
return frames upright: a video with a display rotation (a phone held upright records landscape frames and a rotation
to show them with) is read turned as players, decord and torchcodec show it.
Every failure to read a file is a one-line `VideoDecodeError` ("<path>: <reason>").
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from vjepa_core.errors import UserError, VideoDecodeError

logger = logging.getLogger(__name__)

DECODERS = ("decord", "pyav")
# How far `_open_gop` looks: the packets of a few keyframes' groups, enough for a keyframe every 50 s at 30 fps.
_OPEN_GOP_KEYFRAMES, _OPEN_GOP_PACKETS = 4, 1500
# How far a frame's display may move from its decoding order (H.264 and HEVC allow 16 frames), and the packets
# read past the last frame wanted when mapping timestamps to frames, well over that.
_MAX_REORDER, _REORDER_WINDOW = 16, 64
_T = TypeVar("_T")


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def available_decoders() -> list[str]:
    """The decoders that import here, in order of preference."""
    return list(_importable_decoders())


@functools.cache
def _importable_decoders() -> tuple[str, ...]:
    found = []
    for name, module in (("decord", "decord"), ("pyav", "av")):
        try:
            importlib.import_module(module)
        except (ImportError, OSError) as error:  # OSError: a wheel whose shared libraries are missing
            logger.debug("decoder %s unavailable: %s", name, error)
        else:
            found.append(name)
    return tuple(found)


def probe_video(path: str | os.PathLike[str], *, decoder: str = "auto") -> VideoInfo:
    """Open `path`, count its frames and decode the first one, so a corrupt file fails here."""
    return _dispatch(path, decoder, decord_fn=_probe_decord, pyav_fn=_probe_pyav)


def read_frames(path: str | os.PathLike[str], indices: Sequence[int], *, decoder: str = "auto") -> np.ndarray:
    """uint8 [len(indices), H, W, 3] RGB frames at `indices` (which may repeat, in any order)."""
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        raise ValueError(f"{path}: read_frames needs at least one frame index")
    if wanted.min() < 0:
        raise VideoDecodeError(path, f"negative frame index {int(wanted.min())}")
    # Decode each distinct frame once, then fan out to the requested order (repeats are cheap).
    unique, inverse = np.unique(wanted, return_inverse=True)
    frames = _dispatch(path, decoder, decord_fn=_read_decord, pyav_fn=_read_pyav, indices=unique)
    return frames[inverse]


def _dispatch(path: str | os.PathLike[str], decoder: str, *, decord_fn: Callable[..., _T],
              pyav_fn: Callable[..., _T], **kwargs: Any) -> _T:
    """Run `decord_fn` or `pyav_fn`; "auto" tries decord first and falls back to PyAV."""
    if decoder not in ("auto", *DECODERS):
        raise UserError(f"unknown decoder {decoder!r} (choose from auto, {', '.join(DECODERS)})")
    installed = available_decoders()
    if (decoder == "auto" and not installed) or (decoder != "auto" and decoder not in installed):
        wanted = "a video decoder" if decoder == "auto" else f"decoder {decoder!r}"
        raise UserError(f"{wanted} is not installed (pip install av or decord)")
    path = os.fspath(path)
    _check_file(path)
    if decoder == "pyav" or "decord" not in installed or (decoder == "auto" and "pyav" in installed
                                                          and decord_misreads(path)):
        return pyav_fn(path, **kwargs)
    try:
        return decord_fn(path, **kwargs)
    except VideoDecodeError as error:
        if decoder == "decord" or "pyav" not in installed:
            raise
        logger.debug("decord could not read %s (%s); falling back to PyAV", path, error)
        return pyav_fn(path, **kwargs)


def decord_misreads(path: str) -> bool:
    """Whether decord would return wrong frames for `path`, without an error, so that "auto" reads it with PyAV.
    Decided once per file version (path, size, modification time) in a process."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return _misread_by_decord(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _misread_by_decord(path: str, size: int, mtime_ns: int) -> bool:
    return _mpeg_stream(path) or _open_gop(path)


def _open_gop(path: str) -> bool:
    """A stream with open GOPs: after a keyframe other than the first, frames that show before it (leading
    pictures, as x265 writes with a fixed keyframe interval, its open-gop being on by default, and x264 with
    open-gop). decord seeks in these to the wrong frames (42% of the frames of 16-frame clips of an HEVC video
    with a keyframe every 30 frames). Read off the first keyframes' packets, without decoding."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return False
            keyframes, keyframe_pts = 0, None
            for count, packet in enumerate(container.demux(container.streams.video[0])):
                if count >= _OPEN_GOP_PACKETS or keyframes > _OPEN_GOP_KEYFRAMES:
                    return False
                if packet.pts is None:
                    continue
                if packet.is_keyframe:
                    keyframes += 1
                    keyframe_pts = packet.pts if keyframes > 1 else None
                elif keyframe_pts is not None and packet.pts < keyframe_pts:
                    return True
    except (av.FFmpegError, UnicodeDecodeError):  # unreadable: the read itself says so
        return False
    return False


def _mpeg_stream(path: str) -> bool:
    """An MPEG program stream (.mpg, .vob) or transport stream (.ts, .mts, .m2ts), by its first bytes: decord
    seeks in these to the wrong frames without an error (frame 20 of a .mpg came back as frame 8), PyAV does not."""
    try:
        with open(path, "rb") as file:
            head = file.read(400)
    except OSError:
        return False
    program = head.startswith(b"\x00\x00\x01\xba")  # a pack header
    # 188-byte packets (192 with the 4-byte timecode of .m2ts), each starting with the sync byte 0x47
    transport = any(len(head) > start + 376 and all(head[start + step * i] == 0x47 for i in range(3))
                    for start, step in ((0, 188), (4, 192)))
    return program or transport


def _check_file(path: str) -> None:
    """The failures both decoders would report less clearly."""
    if not os.path.exists(path):
        raise VideoDecodeError(path, "no such file")
    if os.path.isdir(path):
        raise VideoDecodeError(path, "is a folder, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


def _one_line(error: BaseException) -> str:
    """The reason alone: FFmpeg's strerror (without the path again), or decord's first line
    (its errors carry a multi-line C++ backtrace)."""
    if getattr(error, "strerror", None):
        return str(error.strerror)  # type: ignore[attr-defined]
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# ---- decord ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _native_stderr_to_log(path: str) -> Iterator[None]:
    """Decord's bundled FFmpeg writes its complaints ("moov atom not found", "ERROR opening ...") straight
    to file descriptor 2, around the one-line error we raise anyway: send them to the debug log instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace").strip()
            if text:
                logger.debug("decoder messages for %s: %s", path, text)


def _open_decord(path: str) -> Any:
    import decord

    try:
        # One thread per reader: parallelism comes from DataLoader workers, not from the decoder.
        with _native_stderr_to_log(path):
            return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except (RuntimeError, decord.DECORDError) as error:
        raise VideoDecodeError(path, f"cannot open with decord ({_one_line(error)})") from error


def _probe_decord(path: str) -> VideoInfo:
    reader = _open_decord(path)
    num_frames = len(reader)
    if num_frames == 0:
        raise VideoDecodeError(path, "the video has no frames")
    first = _decord_batch(reader, path, np.array([0]))[0]
    return VideoInfo(num_frames=num_frames, fps=float(reader.get_avg_fps()), height=first.shape[0],
                     width=first.shape[1])


def _read_decord(path: str, *, indices: np.ndarray) -> np.ndarray:
    reader = _open_decord(path)
    if indices[-1] >= len(reader):
        raise VideoDecodeError(path, f"frame {int(indices[-1])} requested but the video has {len(reader)} frames")
    return _decord_batch(reader, path, indices)


def _decord_batch(reader: Any, path: str, indices: np.ndarray) -> np.ndarray:
    import decord

    try:
        with _native_stderr_to_log(path):
            return reader.get_batch(indices.tolist()).asnumpy()
    except (RuntimeError, decord.DECORDError) as error:
        raise VideoDecodeError(path, f"decord failed to decode ({_one_line(error)})") from error


# ---- PyAV -----------------------------------------------------------------------------------

def _open_pyav(path: str, *, threads: int = 1) -> Any:
    """`threads` 1 (the default): DataLoader workers give the parallelism; 0: FFmpeg picks (frame threads)."""
    import av

    try:
        container = av.open(path)
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise VideoDecodeError(path, f"not a readable video ({_one_line(error)})") from error
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = threads
    if threads != 1:
        stream.thread_type = "AUTO"
    return container


def _pyav_packets(container: Any, path: str) -> Iterator[Any]:
    """The video stream's packets; the demuxer's last one is empty and flushes the decoder."""
    import av

    try:
        yield from container.demux(container.streams.video[0])
    except av.FFmpegError as error:
        raise VideoDecodeError(path, f"PyAV failed to read ({_one_line(error)})") from error


def _pyav_decode(packet: Any, path: str) -> list[Any]:
    import av

    try:
        return packet.decode()
    except av.FFmpegError as error:
        raise VideoDecodeError(path, f"PyAV failed to decode ({_one_line(error)})") from error


def _probe_pyav(path: str) -> VideoInfo:
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        # Count non-empty packets, as decord indexes them, and decode only until a first frame.
        num_frames, first = 0, None
        for packet in _pyav_packets(container, path):
            num_frames += packet.size > 0
            if first is None:
                first = next(iter(_pyav_decode(packet, path)), None)
        rate = stream.average_rate or stream.guessed_rate
    if num_frames == 0 or first is None:
        raise VideoDecodeError(path, "the video has no decodable frames")
    height, width = (first.width, first.height) if _quarter_turns(first) % 2 else (first.height, first.width)
    return VideoInfo(num_frames=num_frames, fps=float(rate) if rate else 0.0, height=height, width=width)


def _quarter_turns(frame: Any) -> int:
    """How many quarter turns counter-clockwise show `frame` upright (its display rotation, to the nearest one)."""
    return round(frame.rotation / 90) % 4


def _upright_rgb(frame: Any) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a PyAV frame, turned by its display rotation (FFmpeg's decoder leaves that to the
    player; decord applies it)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = _quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _read_pyav(path: str, *, indices: np.ndarray) -> np.ndarray:
    try:
        picked = _seek_frames(path, indices)
    except (_NoSeek, VideoDecodeError) as reason:  # from the start instead: slower, and the final word on the file
        logger.debug("%s: reading from the start (%s)", path, reason)
        picked = dict(iter_frames(path, indices))
    return np.stack([picked[i] for i in indices.tolist()])


class _NoSeek(Exception):
    """Why `_seek_frames` cannot vouch for the frames of a file."""


def _seek_frames(path: str, indices: np.ndarray) -> dict[int, np.ndarray]:
    """{index: RGB frame} for ascending distinct `indices`, decoding from a keyframe before each instead of from
    the start of the file: a clip late in a long video costs a GOP or two, not the whole video.

    Frame i is the one with the i-th smallest timestamp among the packets the decoder shows (as decoding from the
    start counts them). Each read starts a keyframe earlier than the last one at or before the frame: frames that a
    keyframe's group shows before it (open GOPs) decode right only after the previous group. Any doubt (packets
    without timestamps, repeated ones, a seek that lands past a frame) raises `_NoSeek`.
    """
    import bisect

    import av

    last = int(indices[-1])
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        shown, keyframes = _packet_times(container, path, last + _REORDER_WINDOW)
        if len(shown) <= last:
            raise _NoSeek(f"{len(shown)} frames")  # the read from the start reports it
        index_of = {pts: i for i, pts in enumerate(shown[:last + 1])}
        wanted, frames, decoded, at = set(indices.tolist()), {}, None, None
        for index in indices.tolist():
            target = shown[index]
            start = keyframes[max(bisect.bisect_right(keyframes, target) - 2, 0)]
            if decoded is None or at is None or not start <= at < target:
                try:
                    container.seek(start, stream=stream, backward=True, any_frame=False)
                except av.FFmpegError as error:
                    raise _NoSeek(f"seek failed ({_one_line(error)})") from error
                decoded, at = _decoded_frames(container, path), None
            for frame in decoded:
                if frame.pts is None:
                    raise _NoSeek("a frame without a timestamp")
                at = frame.pts
                if index_of.get(at) in wanted:
                    frames.setdefault(index_of[at], _upright_rgb(frame))
                if at >= target:
                    break
            if index not in frames:
                raise _NoSeek(f"frame {index} did not decode after the seek")
    return frames


def _packet_times(container: Any, path: str, limit: int) -> tuple[list[int], list[int]]:
    """(sorted timestamps of the first `limit` frames the decoder shows, sorted keyframe timestamps), from the
    packets alone (no decoding); packets an edit list discards are not shown."""
    times, keyframes = [], []
    for packet in _pyav_packets(container, path):
        if packet.size == 0 or packet.is_discard:
            continue
        if packet.pts is None:
            raise _NoSeek("a packet without a timestamp")
        times.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
        if len(times) >= limit:
            break
    if len(set(times)) != len(times) or not keyframes:
        raise _NoSeek("repeated timestamps" if keyframes else "no keyframe")
    # Timestamps that restart or jump back (joined recordings, DVD cells) would order frames unlike the decoder: a
    # frame may show before the ones decoded just before it (B-frames), never before one decoded long before.
    stamps = np.asarray(times)
    latest = np.maximum.accumulate(stamps)
    if np.any(stamps[_MAX_REORDER + 1:] <= latest[:-_MAX_REORDER - 1]):
        raise _NoSeek("timestamps out of order")
    return sorted(times), sorted(keyframes)


def _decoded_frames(container: Any, path: str) -> Iterator[Any]:
    for packet in _pyav_packets(container, path):
        yield from _pyav_decode(packet, path)


def iter_frames(path: str | os.PathLike[str], indices: Sequence[int], *, threads: int = 1
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(index, uint8 [H, W, 3] RGB) for each distinct index, ascending, from one decode from the start.

    No seeking, so no keyframe surprises; only the frames asked for are converted to RGB, and
    nothing is kept: the caller decides what to hold. A video that ends before the last index
    raises `VideoDecodeError` after yielding the frames it has.
    """
    path = os.fspath(path)
    _check_file(path)
    wanted = np.unique(np.asarray(indices, dtype=np.int64))
    if wanted.size == 0:
        return
    last, remaining, position = int(wanted[-1]), set(wanted.tolist()), 0
    with _open_pyav(path, threads=threads) as container:
        for packet in _pyav_packets(container, path):
            for frame in _pyav_decode(packet, path):
                if position in remaining:
                    yield position, _upright_rgb(frame)
                position += 1
            if position > last:
                return
    raise VideoDecodeError(path, f"frame {last} requested but only {position} frames decode")
