"""decode: frame counts, shapes and pixels agree between decord and PyAV; bad files fail clearly."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support import pan_video
from vjepa_core.data import VIDEO_EXTENSIONS, VideoInfo, available_decoders, decode, probe_video, read_frames
from vjepa_core.data.decode import iter_frames
from vjepa_core.errors import UserError, VideoDecodeError

DECODERS = available_decoders()
BOTH = pytest.mark.skipif(DECODERS != ["decord", "pyav"], reason="needs decord and PyAV")


def _video(folder: Path, ext: str) -> Path:
    return next(folder.glob(f"up/*.{ext}"))


def _write(path: Path, codec: str, frames: np.ndarray, fps: int = 10, rotation: int = 0,
           container_format: str | None = None) -> Path:
    """Encode uint8 [T, H, W, 3] frames with PyAV (for containers the synthetic set lacks), with a display
    rotation of `rotation` degrees counter-clockwise if not 0 (as a phone writes one)."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _ramp(num_frames: int) -> np.ndarray:
    """Frames whose brightness encodes their index (10 * i), to check which frame came back."""
    return np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(num_frames)])


def test_both_decoders_are_available() -> None:
    assert "pyav" in DECODERS
    assert set(DECODERS) <= {"decord", "pyav"}


@pytest.mark.parametrize("ext", ["mp4", "avi"])
@pytest.mark.parametrize("decoder", ["auto", *DECODERS])
def test_probe_reads_count_fps_and_size(synthetic_small: Path, ext: str, decoder: str) -> None:
    info = probe_video(_video(synthetic_small, ext), decoder=decoder)
    assert info == VideoInfo(num_frames=40, fps=12.0, height=96, width=128)


@pytest.mark.parametrize("decoder", DECODERS)
def test_read_frames_keeps_order_and_repeats(synthetic_small: Path, decoder: str) -> None:
    path = _video(synthetic_small, "mp4")
    frames = read_frames(path, [7, 0, 7, 39], decoder=decoder)
    assert frames.shape == (4, 96, 128, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(frames[1], read_frames(path, [0], decoder=decoder)[0])
    assert not np.array_equal(frames[0], frames[1])


@pytest.mark.parametrize("decoder", DECODERS)
def test_read_frames_returns_the_frame_asked_for(tmp_path: Path, decoder: str) -> None:
    path = _write(tmp_path / "ramp.mp4", "libx264", _ramp(20))
    frames = read_frames(path, [12, 3, 19], decoder=decoder)
    assert np.abs(frames.mean(axis=(1, 2, 3)) - [120, 30, 190]).max() < 3


# The listed suffixes the synthetic set does not write: PyAV's muxer for each, and a codec such files carry.
CONTAINERS = {"m4v": ("mp4", "libx264"), "mpg": ("mpeg", "mpeg1video"), "mpeg": ("mpeg", "mpeg2video"),
              "vob": ("vob", "mpeg2video"), "wmv": ("asf", "wmv2"), "flv": ("flv", "flv"), "3gp": ("3gp", "libx264"),
              "ts": ("mpegts", "libx264"), "mts": ("mpegts", "libx264"), "m2ts": ("mpegts", "libx264")}


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_listed_container_reads_the_frames_asked_for(tmp_path: Path, ext: str) -> None:
    """decord seeks to the wrong frames in MPEG program streams without an error; auto reads those with PyAV."""
    muxer, codec = CONTAINERS[ext]
    path = _write(tmp_path / f"ramp.{ext}", codec, _ramp(24), fps=25, container_format=muxer)
    assert f".{ext}" in VIDEO_EXTENSIONS and probe_video(path).num_frames == 24
    for decoder in ("auto", "pyav"):
        frames = read_frames(path, [20, 3, 12, 23], decoder=decoder)
        assert np.abs(frames.mean(axis=(1, 2, 3)) - [200, 30, 120, 230]).max() < 4, decoder


@pytest.mark.parametrize("gop", ["open", "closed"])
def test_an_open_gop_stream_reads_the_frames_asked_for(tmp_path: Path, gop: str) -> None:
    """Leading pictures after keyframes (x265's default, x264's open-gop): decord seeks in these to the wrong
    frames without an error, so auto reads them with PyAV; closed GOPs stay with decord."""
    path = pan_video(tmp_path / f"{gop}.mp4", 120, keyint="30", **{"open-gop": f"{gop == 'open':d}"})
    assert decode._open_gop(str(path)) == (gop == "open")
    clips = [list(range(start, start + 32, 2)) for start in range(0, 88, 7)]
    truth = [read_frames(path, clip, decoder="pyav") for clip in clips]  # decoded in order from a keyframe
    pairs = list(zip(clips, truth, strict=True))
    assert all(np.array_equal(read_frames(path, clip, decoder="auto"), frames) for clip, frames in pairs)
    if "decord" in DECODERS:  # what auto spares the user
        right = [np.array_equal(read_frames(path, clip, decoder="decord"), frames) for clip, frames in pairs]
        assert all(right) == (gop == "closed")


@pytest.mark.parametrize(("name", "options"), [
    ("b-frames.mp4", {}), ("open-gop.mp4", {"open-gop": "1"}), ("rotated.mov", {"rotation": 90}),
    ("no-b-frames.mkv", {"bframes": "0"}), ("transport.ts", {"muxer": "mpegts"})])
def test_pyav_reads_from_a_keyframe_the_frames_a_read_from_the_start_gives(tmp_path: Path, name: str,
                                                                           options: dict) -> None:
    """A clip late in a video decodes a GOP or two, not everything before it; a file whose seeks cannot be
    trusted (a transport stream seeks past the frame) is read from the start."""
    path = pan_video(tmp_path / name, 100, **options)
    for start in (0, 33, 67):
        wanted = np.arange(start, start + 32, 2)
        from_start = dict(iter_frames(path, wanted))
        assert np.array_equal(read_frames(path, wanted, decoder="pyav"), np.stack([from_start[i] for i in wanted]))
        if not name.endswith(".ts"):  # read by seeking, not by the fallback
            sought = decode._seek_frames(str(path), wanted)
            assert sought.keys() == from_start.keys()
            assert all(np.array_equal(sought[i], from_start[i]) for i in from_start)


def test_joined_recordings_whose_timestamps_jump_back_are_read_from_the_start(tmp_path: Path) -> None:
    """Two MPEG program streams joined byte for byte (as camcorders and DVD cells do), the second timed earlier: the
    timestamps do not order the frames as the decoder shows them, so PyAV does not seek in the file."""
    parts = []
    for index, offset in enumerate((100, 0)):
        part = tmp_path / f"part{index}.mpg"
        with av.open(str(part), "w", format="mpeg") as container:
            stream = container.add_stream("mpeg1video", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for number, image in enumerate(_ramp(20)):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = offset + number, Fraction(1, 25)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.mpg"
    joined.write_bytes(b"".join(parts))
    wanted = np.arange(10, 34, 3)
    with pytest.raises(decode._NoSeek, match="out of order"):
        decode._seek_frames(str(joined), wanted)
    from_start = dict(iter_frames(joined, wanted))
    assert np.array_equal(read_frames(joined, wanted, decoder="pyav"), np.stack([from_start[i] for i in wanted]))


@BOTH
@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_decord_and_pyav_agree_on_every_frame(synthetic_small: Path, ext: str) -> None:
    path = _video(synthetic_small, ext)
    assert probe_video(path, decoder="decord") == probe_video(path, decoder="pyav")
    a = read_frames(path, range(40), decoder="decord").astype(np.int16)
    b = read_frames(path, range(40), decoder="pyav").astype(np.int16)
    assert a.shape == b.shape == (40, 96, 128, 3)
    assert np.abs(a - b).mean() < 0.5


def _marked(num_frames: int) -> np.ndarray:
    """128x96 frames, dark with a bright block in the top-left corner: which way is up shows."""
    frames = np.full((num_frames, 96, 128, 3), 30, np.uint8)
    frames[:, :32, :48] = 220
    return frames


@pytest.mark.parametrize("rotation", [90, 180, -90])
def test_a_rotated_video_reads_upright_with_either_decoder(tmp_path: Path, rotation: int) -> None:
    from torchcodec.decoders import VideoDecoder  # an independent reader that shows rotated videos upright

    path = _write(tmp_path / "phone.mp4", "libx264", _marked(12), rotation=rotation)
    upright = np.rot90(_marked(1)[0], rotation // 90)
    shown = VideoDecoder(str(path)).get_frames_at([5]).data[0].permute(1, 2, 0).numpy()
    assert shown.shape == upright.shape and np.abs(shown.astype(int) - upright).mean() < 3
    height, width = upright.shape[:2]
    for decoder in ["auto", *DECODERS]:
        assert probe_video(path, decoder=decoder) == VideoInfo(num_frames=12, fps=10.0, height=height, width=width)
        frames = read_frames(path, [0, 5, 11], decoder=decoder)
        assert frames.shape == (3, height, width, 3), decoder
        np.testing.assert_array_equal(frames[1], shown, err_msg=decoder)
    streamed = dict(iter_frames(path, [5]))  # the window path (`runner predict --window`, the demo's timeline)
    np.testing.assert_array_equal(streamed[5], shown)


@BOTH
@pytest.mark.parametrize(("name", "codec"), [("clip.mkv", "libx264"), ("clip.mov", "libx264")])
def test_frame_counts_agree_without_a_frame_count_header(tmp_path: Path, name: str, codec: str) -> None:
    # Matroska stores no frame count: PyAV must count packets as decord indexes them.
    path = _write(tmp_path / name, codec, _ramp(25))
    assert probe_video(path, decoder="decord").num_frames == probe_video(path, decoder="pyav").num_frames == 25


@pytest.mark.parametrize("decoder", ["auto", *DECODERS])
def test_zero_byte_file_raises(tmp_path: Path, decoder: str) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4: empty file \(0 bytes\)"):
        probe_video(path, decoder=decoder)


@pytest.mark.parametrize("decoder", ["auto", *DECODERS])
def test_truncated_mp4_raises_naming_the_file(synthetic_small: Path, tmp_path: Path, decoder: str) -> None:
    data = _video(synthetic_small, "mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as caught:
        probe_video(path, decoder=decoder)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    with pytest.raises(VideoDecodeError):
        read_frames(path, [0], decoder=decoder)


@pytest.mark.parametrize("decoder", DECODERS)
def test_truncated_avi_counts_only_the_frames_it_holds(synthetic_small: Path, tmp_path: Path,
                                                       decoder: str) -> None:
    data = _video(synthetic_small, "avi").read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    info = probe_video(path, decoder=decoder)
    assert 0 < info.num_frames < 40
    assert read_frames(path, [info.num_frames - 1], decoder=decoder).shape == (1, 96, 128, 3)
    with pytest.raises(VideoDecodeError, match=rf"cut\.avi: frame 39 requested .* {info.num_frames} frames"):
        read_frames(path, [39], decoder=decoder)


@pytest.mark.parametrize("decoder", ["auto", *DECODERS])
def test_not_a_video_and_missing_file_raise(tmp_path: Path, decoder: str) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoDecodeError, match=r"notes\.mp4: "):
        probe_video(text, decoder=decoder)
    with pytest.raises(VideoDecodeError, match=r"nothing\.avi: no such file"):
        probe_video(tmp_path / "nothing.avi", decoder=decoder)
    with pytest.raises(VideoDecodeError, match="is a folder"):
        probe_video(tmp_path, decoder=decoder)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoDecodeError, match=r"sound\.mkv: .*no video stream"):
        probe_video(path, decoder="pyav")


@pytest.mark.parametrize("decoder", DECODERS)
def test_index_past_the_end_raises(synthetic_small: Path, decoder: str) -> None:
    with pytest.raises(VideoDecodeError, match="frame 40 requested"):
        read_frames(_video(synthetic_small, "mp4"), [0, 40], decoder=decoder)


def test_unknown_decoder_is_a_user_error(synthetic_small: Path) -> None:
    with pytest.raises(UserError, match="unknown decoder 'ffmpeg'"):
        probe_video(_video(synthetic_small, "mp4"), decoder="ffmpeg")
    with pytest.raises(UserError, match="unknown decoder"):
        read_frames(_video(synthetic_small, "mp4"), [0], decoder="opencv")


@BOTH
def test_auto_falls_back_to_pyav_with_a_debug_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Frame 25 of a 20-frame file fails in decord first; auto must try PyAV and say so at debug level.
    path = _write(tmp_path / "short.mp4", "libx264", _ramp(20))
    with caplog.at_level(logging.DEBUG, logger="vjepa_core.data.decode"), pytest.raises(VideoDecodeError):
        read_frames(path, [25])
    assert any("falling back to PyAV" in record.message for record in caplog.records)
