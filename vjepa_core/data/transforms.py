"""Decoded frames -> the model's input: uint8 [T, H, W, 3] RGB -> float32 [T, 3, crop, crop], normalised, one video
of `pixel_values_videos` [B, T, C, H, W]. `eval_views` reproduces `transformers.VJEPA2VideoProcessor` exactly
(short side to int(crop * 256 / 224), centre crop, ImageNet mean/std); `TrainAugment` adds a random resized crop
and flip, the same for every frame of a clip, drawn from the caller's `torch.Generator`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as tvF
from torchvision import tv_tensors

from vjepa_core.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The processor fuses rescale (1/255) into normalise: (x - 255 * mean) / (255 * std), in float32.
_MEAN_255 = torch.tensor(IMAGENET_MEAN) * 255.0
_STD_255 = torch.tensor(IMAGENET_STD) * 255.0


def resize_size(crop_size: int) -> int:
    """The short side before cropping, as V-JEPA 2's processor computes it."""
    return int(crop_size * 256 / 224)


def eval_views(frames: np.ndarray | torch.Tensor, crop_size: int, *, num_crops: int = 1) -> list[torch.Tensor]:
    """`num_crops` (1 or 3) float32 views [T, 3, crop, crop]: centre, or start/centre/end of the long side."""
    return crop_views(eval_resize(to_video(frames), crop_size), crop_size, num_crops=num_crops)


def eval_resize(video: torch.Tensor, crop_size: int) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, h, w] with short side `resize_size(crop_size)`: the first half of
    `eval_views`. Resizing is per frame, so frames resized one by one as they are decoded (a long video
    streamed) give the same pixels as a whole clip resized at once."""
    return _resize_short_side(video, resize_size(crop_size))


def crop_views(video: torch.Tensor, crop_size: int, *, num_crops: int = 1) -> list[torch.Tensor]:
    """The second half of `eval_views`: crops of resized uint8 [T, 3, h, w], normalised to float32."""
    if num_crops not in (1, 3):
        raise UserError(f"eval_crops must be 1 or 3, got {num_crops}")
    height, width = video.shape[-2:]
    # The processor's centre crop rounds down: int((size - crop) / 2).
    top, left = int((height - crop_size) / 2), int((width - crop_size) / 2)
    if num_crops == 1:
        offsets = [(top, left)]
    elif height > width:
        offsets = [(0, left), (top, left), (height - crop_size, left)]
    else:
        offsets = [(top, 0), (top, left), (top, width - crop_size)]
    return [normalize(tvF.crop(video, y, x, crop_size, crop_size)) for y, x in offsets]


class TrainAugment:
    """Random resized crop + optional horizontal flip, identical for all frames of a clip."""

    def __init__(self, crop_size: int, *, hflip: bool = True, scale: tuple[float, float] = (0.4, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise UserError(f"TrainAugment: need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]; "
                            f"got scale={scale}, ratio={ratio}")
        self.crop_size, self.hflip, self.scale, self.ratio = crop_size, hflip, scale, ratio

    def __call__(self, frames: np.ndarray | torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, bool]:
        """(float32 [T, 3, crop, crop], whether the clip was mirrored left-right)."""
        video = to_video(frames)
        top, left, height, width = random_crop_box(video.shape[-2:], generator, scale=self.scale, ratio=self.ratio)
        # A tv_tensors.Video makes torchvision treat T as time: one box and one flip for every frame.
        video = tvF.resized_crop(tv_tensors.Video(video), top, left, height, width,
                                 size=[self.crop_size, self.crop_size], antialias=True)
        # Always draw the flip coin, so turning hflip off does not shift later random draws.
        flipped = bool(torch.rand(1, generator=generator).item() < 0.5) and self.hflip
        if flipped:
            video = tvF.horizontal_flip(video)
        return normalize(video.as_subclass(torch.Tensor)), flipped

    def __repr__(self) -> str:
        return f"TrainAugment(crop_size={self.crop_size}, hflip={self.hflip}, scale={self.scale}, ratio={self.ratio})"


def random_crop_box(size: tuple[int, int] | torch.Size, generator: torch.Generator, *,
                    scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a box covering `scale` of the area with aspect in `ratio`.

    Rejection sampling (10 tries) as in Inception-style crops, then the largest centred box whose
    aspect ratio is within bounds; every draw comes from `generator`.
    """
    height, width = int(size[0]), int(size[1])
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        area = height * width * _uniform(generator, *scale)
        aspect = math.exp(_uniform(generator, *log_ratio))
        box_w, box_h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < box_w <= width and 0 < box_h <= height:
            top = int(torch.randint(0, height - box_h + 1, (1,), generator=generator).item())
            left = int(torch.randint(0, width - box_w + 1, (1,), generator=generator).item())
            return top, left, box_h, box_w
    aspect = width / height
    if aspect < ratio[0]:
        box_w, box_h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        box_h, box_w = height, round(height * ratio[1])
    else:
        box_h, box_w = height, width
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def to_video(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [T, H, W, 3] (numpy or torch) -> uint8 tensor [T, 3, H, W]."""
    video = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {video.dtype} {tuple(video.shape)}")
    return video.permute(0, 3, 1, 2).contiguous()


def normalize(video: torch.Tensor) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> float32, (x - 255 * mean) / (255 * std), as the processor computes it."""
    return tvF.normalize(video.to(torch.float32), _MEAN_255.tolist(), _STD_255.tolist())


def _resize_short_side(video: torch.Tensor, short: int) -> torch.Tensor:
    """Resize uint8 [T, 3, H, W] so its short side is `short`; the long side rounds down."""
    height, width = video.shape[-2:]
    size = [int(short * height / width), short] if width <= height else [short, int(short * width / height)]
    return tvF.resize(video, size, interpolation=tvF.InterpolationMode.BILINEAR, antialias=True)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64).item())
