"""The engine-agreement benchmark's yardsticks: changes to decoded frames that no one sees."""

from __future__ import annotations

import numpy as np

from benchmarks.engine_agreement import h264_round_trip, one_grey_level


def _clip(height: int = 33, width: int = 47) -> np.ndarray:
    """uint8 [8, H, W, 3]: a smooth gradient moving right, with black and white corners to clip against."""
    x = np.arange(width)
    rows = np.stack([(x + 3 * t) * 255 / (width + 24) for t in range(8)])  # [8, W]
    clip = np.broadcast_to(rows[:, None, :, None], (8, height, width, 3)).astype(np.uint8)
    clip[:, :4, :4], clip[:, -4:, -4:] = 0, 255
    return clip


def test_one_grey_level_moves_values_by_at_most_one_and_keeps_them_in_range() -> None:
    clip = _clip()
    moved = one_grey_level(clip)
    step = moved.astype(np.int16) - clip.astype(np.int16)
    assert moved.dtype == np.uint8 and moved.shape == clip.shape
    assert set(np.unique(step)) <= {-1, 0, 1}
    assert 0.5 < (step != 0).mean() < 0.8  # two in three values move, but where 0 or 255 would be crossed
    assert np.array_equal(moved, one_grey_level(clip))  # seeded: the same yardstick every run


def test_h264_round_trip_is_close_to_the_frames_and_drops_an_odd_row_and_column() -> None:
    clip = _clip()
    decoded = h264_round_trip(clip)
    assert decoded.shape == (8, 32, 46, 3) and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(np.int16) - clip[:, :32, :46].astype(np.int16))
    assert 0 < error.mean() < 2.0, error.mean()  # lossy, but visually lossless
    assert np.array_equal(decoded, h264_round_trip(clip))
