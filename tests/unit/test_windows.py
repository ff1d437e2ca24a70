"""Long videos: window planning, the streamed decode, batched window predictions, the long-video generator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vjepa_core.data import VideoInfo, eval_views, probe_video, read_frames
from vjepa_core.data.synthetic import write_long_video
from vjepa_core.errors import UserError
from vjepa_core.inference.predict import Predictor
from vjepa_core.inference.windows import (
    classify_windows,
    plan_windows,
    short_window_note,
    stream_views,
    write_rows,
)
from vjepa_core.models import base_fingerprint, load_model
from vjepa_core.spec import RunSpec
from vjepa_core.store.checkpoint import load_checkpoint, save_checkpoint
from vjepa_core.training.experiment import preprocessing

LABELS = ["down", "left", "right", "still", "up", "wave"]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float, str]]]:
    """10 s at 12 fps, 96x128, a new motion class every 2 s."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return path, write_long_video(path, seconds=10, fps=12, height=96, width=128, segment_seconds=2)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """An untrained tiny checkpoint with 2 eval clips x 3 crops per video: several views per window."""
    spec = RunSpec(strategy="head", frames_per_clip=8, frame_stride=2, eval_clips=2, eval_crops=3)
    model = load_model("tiny", LABELS, seed=0)
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / spec.run_id, model, spec=spec, labels=LABELS,
                           base_fp=base_fingerprint(model), preprocessing=preprocessing(spec, 64), metrics={})
    return Predictor(load_checkpoint(path), device="cpu")


def test_long_video_has_its_segments(long_video: tuple[Path, list]) -> None:
    path, segments = long_video
    info = probe_video(path)
    assert (info.num_frames, info.fps, info.height, info.width) == (120, 12.0, 96, 128)
    assert [(start, end) for start, end, _ in segments] == [(2.0 * i, 2.0 * i + 2) for i in range(5)]


def test_plan_covers_the_video_with_overlapping_windows() -> None:
    info = VideoInfo(num_frames=125, fps=25.0, height=1, width=1)
    windows = plan_windows(info, window=2, stride=1, frames_per_clip=16, frame_stride=2)
    assert [(w.start, w.end) for w in windows] == [(0, 2), (1, 3), (2, 4), (3, 5)]
    # 2.5 s would leave the last 0.5 s out: a final window ends at the last frame.
    info = VideoInfo(num_frames=130, fps=25.0, height=1, width=1)
    windows = plan_windows(info, window=2, stride=1, frames_per_clip=16, frame_stride=2, num_clips=2)
    assert [(w.start_frame, w.end_frame) for w in windows][-2:] == [(75, 125), (80, 130)]
    for window in windows:
        assert len(window.clips) == 2
        assert all(window.start_frame <= i < window.end_frame for clip in window.clips for i in clip)
        assert all(np.array_equal(np.diff(clip), np.full(15, 2)) for clip in window.clips)


@pytest.mark.parametrize(("window", "stride", "message"), [
    (6.0, 1.0, "window of 6 s is longer than the video (5.00 s, 125 frames)"),
    (2.0, 0.0, "stride must be > 0 seconds, got 0"),
    (2.0, -1.0, "stride must be > 0 seconds, got -1"),
    (0.0, 1.0, "window must be > 0 seconds, got 0"),
    (float("nan"), 1.0, "window must be > 0 seconds"),
])
def test_plan_refuses_impossible_windows(window: float, stride: float, message: str) -> None:
    info = VideoInfo(num_frames=125, fps=25.0, height=1, width=1)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_windows(info, window=window, stride=stride, frames_per_clip=16, frame_stride=2)


def test_short_windows_are_flagged() -> None:
    info = VideoInfo(num_frames=120, fps=12.0, height=1, width=1)
    short = plan_windows(info, window=2, stride=1, frames_per_clip=16, frame_stride=2)
    assert "holds 24 frames but the checkpoint's clips span 31" in short_window_note(short, 16, 2)
    assert short_window_note(plan_windows(info, window=3, stride=1, frames_per_clip=16, frame_stride=2), 16, 2) is None


def test_streamed_views_equal_views_of_decoded_clips(long_video: tuple[Path, list]) -> None:
    path, _ = long_video
    windows = plan_windows(probe_video(path), window=3, stride=1.5, frames_per_clip=8, frame_stride=2, num_clips=2)
    streamed = list(stream_views(path, windows, crop_size=64, num_crops=3))
    assert [window.index for window, _ in streamed] == list(range(len(windows)))
    for window, views in streamed:
        expected = [view for clip in window.clips for view in eval_views(read_frames(path, clip), 64, num_crops=3)]
        assert len(views) == 6 and all(torch.equal(a, b) for a, b in zip(views, expected, strict=True))


def test_a_window_over_the_whole_video_is_its_prediction(predictor: Predictor, long_video: tuple[Path, list]) -> None:
    path, _ = long_video
    windows = plan_windows(probe_video(path), window=10, stride=1, frames_per_clip=8, frame_stride=2, num_clips=2)
    (only,) = classify_windows(predictor, path, windows, batch_size=4)
    whole = predictor.classify(path).probs
    assert only.probs == pytest.approx(whole, abs=1e-6)


def test_batching_does_not_change_predictions(predictor: Predictor, long_video: tuple[Path, list]) -> None:
    path, _ = long_video
    windows = plan_windows(probe_video(path), window=4, stride=2, frames_per_clip=8, frame_stride=2, num_clips=2)
    one = list(classify_windows(predictor, path, windows, batch_size=5, keep_frames=True))
    many = list(classify_windows(predictor, path, windows, batch_size=16))
    assert [p.window.index for p in many] == list(range(4))
    for a, b in zip(one, many, strict=True):
        assert a.probs == pytest.approx(b.probs, abs=1e-5) and sum(a.probs.values()) == pytest.approx(1.0)
    assert one[0].frames is not None and one[0].frames.shape == (8, 3, 64, 64) and many[0].frames is None


def test_rows_are_written_whole_or_not_at_all(predictor: Predictor, long_video: tuple[Path, list],
                                              tmp_path: Path) -> None:
    path, _ = long_video
    windows = plan_windows(probe_video(path), window=4, stride=2, frames_per_clip=8, frame_stride=2)
    predictions = list(classify_windows(predictor, path, windows))
    rows = [p.flat_row(2) for p in predictions]
    write_rows(tmp_path / "t.csv", rows)
    with (tmp_path / "t.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [(float(r["start"]), float(r["end"])) for r in table] == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert list(table[0])[:6] == ["start", "end", "label_1", "prob_1", "label_2", "prob_2"]
    assert float(table[0]["prob_1"]) == pytest.approx(float(table[0][f"p_{table[0]['label_1']}"]))
    assert json.loads(write_rows(tmp_path / "t.json", rows).read_text()) == rows
    with pytest.raises(UserError, match="as .csv or .json"):
        write_rows(tmp_path / "t.txt", rows)
    with pytest.raises(TypeError):
        write_rows(tmp_path / "bad.json", [{"x": object()}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]  # no partial file left
