"""sampling: clip indices keep the stride, stay in range, pad short videos, and are seeded."""

from __future__ import annotations

import numpy as np
import pytest

from vjepa_core.data import clip_span, eval_clip_indices, train_clip_indices


def test_train_clip_has_the_stride_and_stays_in_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        clip = train_clip_indices(40, 16, 2, rng)
        assert clip.dtype == np.int64 and clip.shape == (16,)
        assert (np.diff(clip) == 2).all()
        assert clip[0] >= 0 and clip[-1] <= 39


def test_train_offsets_cover_every_valid_start() -> None:
    rng = np.random.default_rng(1)
    starts = {int(train_clip_indices(40, 16, 2, rng)[0]) for _ in range(500)}
    assert starts == set(range(40 - clip_span(16, 2) + 1))  # 0..9


def test_train_clip_is_reproducible_from_the_generator() -> None:
    first = [train_clip_indices(100, 8, 3, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


def test_short_video_keeps_the_stride_and_repeats_the_last_frame() -> None:
    clip = train_clip_indices(10, 8, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(clip, [0, 2, 4, 6, 8, 9, 9, 9])
    np.testing.assert_array_equal(eval_clip_indices(1, 4, 2)[0], [0, 0, 0, 0])


def test_one_eval_clip_is_centred() -> None:
    (clip,) = eval_clip_indices(40, 16, 2)
    np.testing.assert_array_equal(clip, np.arange(4, 35, 2))  # 9 spare frames: 4 before, 5 after
    (exact,) = eval_clip_indices(31, 16, 2)
    np.testing.assert_array_equal(exact, np.arange(0, 31, 2))


def test_eval_clips_are_deterministic_and_evenly_spaced() -> None:
    clips = eval_clip_indices(100, 8, 2, num_clips=3)
    starts = [int(c[0]) for c in clips]
    assert starts == [14, 42, 70]  # centres of three equal parts of the 0..85 valid starts
    assert all(c.dtype == np.int64 and c.shape == (8,) for c in clips)
    assert [c.tolist() for c in eval_clip_indices(100, 8, 2, num_clips=3)] == [c.tolist() for c in clips]


def test_eval_clips_on_a_short_video_all_pad() -> None:
    clips = eval_clip_indices(5, 4, 2, num_clips=2)
    for clip in clips:
        np.testing.assert_array_equal(clip, [0, 2, 4, 4])


@pytest.mark.parametrize(("num_frames", "frames_per_clip", "stride"), [(0, 8, 1), (10, 0, 1), (10, 8, 0)])
def test_impossible_arguments_raise(num_frames: int, frames_per_clip: int, stride: int) -> None:
    with pytest.raises(ValueError, match="num_frames, frames_per_clip and stride"):
        train_clip_indices(num_frames, frames_per_clip, stride, np.random.default_rng(0))
    with pytest.raises(ValueError):
        eval_clip_indices(num_frames, frames_per_clip, stride)


def test_zero_eval_clips_raise() -> None:
    with pytest.raises(ValueError, match="num_clips"):
        eval_clip_indices(40, 8, 2, num_clips=0)
