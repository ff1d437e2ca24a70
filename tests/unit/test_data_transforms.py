"""transforms: eval views match VJEPA2VideoProcessor; training augmentation is seeded and clip-wide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import VJEPA2VideoProcessor

from vjepa_core.data import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, eval_views, read_frames, resize_size
from vjepa_core.errors import UserError


def _frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def _processor(frames: np.ndarray, crop_size: int, **kwargs: bool) -> torch.Tensor:
    processor = VJEPA2VideoProcessor(crop_size=crop_size)
    return processor([frames], return_tensors="pt", **kwargs)["pixel_values_videos"][0]


@pytest.mark.parametrize(("height", "width", "crop"), [(96, 128, 64), (240, 320, 224), (321, 241, 256),
                                                       (100, 100, 32), (97, 131, 60)])
def test_eval_view_equals_the_vjepa2_processor(height: int, width: int, crop: int) -> None:
    frames = _frames(4, height, width)
    (view,) = eval_views(frames, crop)
    assert view.shape == (4, 3, crop, crop) and view.dtype == torch.float32
    torch.testing.assert_close(view, _processor(frames, crop), rtol=0, atol=1e-6)


def test_eval_view_of_decoded_frames_equals_the_processor(synthetic_small: Path) -> None:
    frames = read_frames(next(synthetic_small.glob("wave/*.mp4")), range(0, 32, 2))
    torch.testing.assert_close(eval_views(torch.from_numpy(frames), 64)[0], _processor(frames, 64), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("height", "width"), [(96, 128), (128, 96)])
def test_three_crops_run_along_the_long_side(height: int, width: int) -> None:
    frames = _frames(2, height, width, seed=1)
    crop = 64
    views = eval_views(frames, crop, num_crops=3)
    assert [tuple(v.shape) for v in views] == [(2, 3, crop, crop)] * 3
    torch.testing.assert_close(views[1], eval_views(frames, crop)[0], rtol=0, atol=0)
    # The processor without its centre crop gives the resized video; the outer views are its ends.
    resized = _processor(frames, crop, do_center_crop=False)
    short = resize_size(crop)
    assert min(resized.shape[-2:]) == short
    middle = (short - crop) // 2
    if width > height:
        first, last = resized[..., middle:middle + crop, :crop], resized[..., middle:middle + crop, -crop:]
    else:
        first, last = resized[..., :crop, middle:middle + crop], resized[..., -crop:, middle:middle + crop]
    torch.testing.assert_close(views[0], first, rtol=0, atol=1e-6)
    torch.testing.assert_close(views[2], last, rtol=0, atol=1e-6)


def test_eval_crops_other_than_one_or_three_are_refused() -> None:
    with pytest.raises(UserError, match="eval_crops must be 1 or 3"):
        eval_views(_frames(1, 64, 64), 32, num_crops=2)


def test_normalisation_uses_imagenet_statistics() -> None:
    grey = np.full((2, 40, 40, 3), 128, np.uint8)
    (view,) = eval_views(grey, 32)
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(view[0, :, 5, 5], expected, rtol=0, atol=1e-5)


def test_wrong_input_layout_is_refused() -> None:
    with pytest.raises(ValueError, match=r"uint8 frames \[T, H, W, 3\]"):
        eval_views(np.zeros((2, 3, 32, 32), np.uint8), 16)
    with pytest.raises(ValueError, match="uint8"):
        TrainAugment(16)(np.zeros((2, 32, 32, 3), np.float32), torch.Generator())


def test_train_augment_is_reproducible_from_its_generator() -> None:
    frames = _frames(8, 96, 128)
    augment = TrainAugment(64)
    torch.manual_seed(0)  # the global RNG must not matter
    first, flip_first = augment(frames, torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    again, flip_again = augment(frames, torch.Generator().manual_seed(5))
    assert first.shape == (8, 3, 64, 64) and first.dtype == torch.float32
    assert flip_first == flip_again
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    other = [augment(frames, torch.Generator().manual_seed(seed))[0] for seed in range(6, 10)]
    assert all(not torch.equal(first, view) for view in other)


def test_train_augment_applies_one_crop_and_flip_to_every_frame() -> None:
    # Identical frames in, identical frames out, whatever box and flip were drawn.
    frames = np.repeat(_frames(1, 96, 128, seed=3), 6, axis=0)
    for seed in range(8):
        clip, _ = TrainAugment(48)(frames, torch.Generator().manual_seed(seed))
        for t in range(1, 6):
            torch.testing.assert_close(clip[t], clip[0], rtol=0, atol=0)


def test_flip_is_a_mirror_of_the_same_crop() -> None:
    frames = _frames(4, 96, 128, seed=4)
    flips = []
    for seed in range(20):
        flipped, was_flipped = TrainAugment(48)(frames, torch.Generator().manual_seed(seed))
        plain, never = TrainAugment(48, hflip=False)(frames, torch.Generator().manual_seed(seed))
        assert never is False
        expected = plain.flip(-1) if was_flipped else plain
        torch.testing.assert_close(flipped, expected, rtol=0, atol=0)
        flips.append(was_flipped)
    assert any(flips) and not all(flips)


def test_train_augment_rejects_impossible_ranges() -> None:
    with pytest.raises(UserError, match="scale"):
        TrainAugment(32, scale=(0.8, 0.2))
