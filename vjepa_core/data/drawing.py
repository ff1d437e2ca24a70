"""What every synthetic video is drawn with, so that the labelled classes (`synthetic`), the source task and the
unlabelled corpus (`corpus`) share one look: a textured background, colours that stand out from it, shapes
that wrap around the frame's edges (and so stay in view), and Gaussian pixel noise; float frames
[T, H, W, 3] in, uint8 out.
"""

from __future__ import annotations

import numpy as np


def background(rng: np.random.Generator, height: int, width: int, texture: float) -> np.ndarray:
    """float32 [H, W, 3]: a random base colour modulated by two random colour gratings of strength `texture`.

    Strong texture drowns the moving shapes' edges in a frozen random encoder's tokens; the default is
    mild so the motion, not the wallpaper, is what the features carry."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.broadcast_to(rng.uniform(50, 205, 3).astype(np.float32), (height, width, 3)).copy()
    for _ in range(2):
        fy, fx = rng.uniform(-3, 3, 2)
        grating = np.sin(2 * np.pi * (fy * yy / height + fx * xx / width) + rng.uniform(0, 2 * np.pi))
        image += grating[..., None] * (texture * rng.uniform(-40, 40, 3)).astype(np.float32)
    return image


def shape_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background's mean colour."""
    colour = rng.uniform(0, 255, 3)
    mean = background.mean(axis=(0, 1))
    if np.abs(colour - mean).mean() < 60:
        # Push every channel away from the background, towards whichever end is further.
        colour = np.where(mean > 127, rng.uniform(0, 50, 3), rng.uniform(205, 255, 3))
    return colour.astype(np.float32)


def torus_offsets(ys: np.ndarray, xs: np.ndarray, *, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy [T, H, 1], dx [T, 1, W]): each row's and column's offset from the centre, the short way round."""
    dy = (np.arange(height)[None, :, None] - ys[:, None, None] + height / 2) % height - height / 2
    dx = (np.arange(width)[None, None, :] - xs[:, None, None] + width / 2) % width - width / 2
    return dy, dx


def with_noise(frames: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """uint8 frames: `frames` (float, 0-255) plus Gaussian noise of std `noise` x 255, clipped."""
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(noise * 255)
    return np.clip(frames, 0, 255).round().astype(np.uint8)
