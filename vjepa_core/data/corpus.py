"""Synthetic scenes beyond the labelled motion classes: an unlabelled corpus for self-supervised pretraining (1-4
sprites with random motions, sizes and spins) and a labelled *source* task whose classes differ from the
default study's, on which a pooler can learn to summarise motion as the hub checkpoints' poolers learnt on
SSv2 before users probe them on their own classes. Both render uint8 RGB frames [T, H, W, 3] in the look of
`vjepa_core.data.synthetic`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from vjepa_core.data.drawing import background, shape_colour, torus_offsets, with_noise

SOURCE_CLASSES = ("up_left", "up_right", "down_left", "down_right", "grow", "shrink", "orbit", "spin")
SHAPES = ("disc", "square", "ring", "bar")
# Source-set clips mirror like the default set's: left-right flips swap these classes.
SOURCE_FLIP_PAIRS = {"up_left": "up_right", "up_right": "up_left", "down_left": "down_right",
                     "down_right": "down_left"}


@dataclass(frozen=True)
class Sprite:
    """One object's track: centre (ys, xs), half-size and angle per frame [num_frames] each."""

    ys: np.ndarray
    xs: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    shape: str
    stripes: float  # stripe frequency along the sprite's own x axis (0: plain)


def render_corpus_video(index: int, params: dict) -> np.ndarray:
    """Video `index` of the unlabelled corpus: uint8 [num_frames, height, width, 3]."""
    rng = np.random.default_rng([params["seed"], zlib.crc32(b"corpus"), index])
    texture = rng.uniform(0.0, params.get("texture", 0.5))
    sprites = [_random_sprite(rng, params) for _ in range(int(rng.integers(1, params.get("max_sprites", 4) + 1)))]
    pan = None
    if rng.random() < params.get("pan", 0.0):
        angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 2.0)
        pan = (speed * np.sin(angle), speed * np.cos(angle))
    return _render(rng, sprites, params, texture=texture, noise=rng.uniform(0.0, params.get("noise", 0.05)),
                   pan=pan)


def render_source_video(name: str, index: int, params: dict) -> np.ndarray:
    """Video `index` of source class `name`: uint8 [num_frames, height, width, 3]."""
    if name not in SOURCE_CLASSES:
        raise ValueError(f"unknown source class {name!r} (known: {', '.join(SOURCE_CLASSES)})")
    rng = np.random.default_rng([params["seed"], zlib.crc32(name.encode()), index])
    sprites = [_class_sprite(name, rng, params) for _ in range(int(rng.integers(1, 3)))]
    return _render(rng, sprites, params, texture=params.get("texture", 0.1), noise=params.get("noise", 0.03))


def _render(rng: np.random.Generator, sprites: list[Sprite], params: dict, *, texture: float,
            noise: float, pan: tuple[float, float] | None = None) -> np.ndarray:
    height, width, num_frames = params["height"], params["width"], params["num_frames"]
    wall = background(rng, height, width, texture)
    frames = np.broadcast_to(wall, (num_frames, height, width, 3)).copy()
    if pan is not None:  # the camera moves: the background slides (wrapping), and so does every sprite
        for t in range(num_frames):
            frames[t] = np.roll(wall, (round(pan[0] * t), round(pan[1] * t)), axis=(0, 1))
        t = np.arange(num_frames)
        sprites = [Sprite(s.ys + pan[0] * t, s.xs + pan[1] * t, s.sizes, s.angles, s.shape, s.stripes)
                   for s in sprites]
    for sprite in sprites:
        mask, u = _sprite_mask(sprite, height=height, width=width)
        colour = shape_colour(rng, wall)
        if sprite.stripes:
            # Striped sprites alternate their colour with a darker shade, so spin and sliding show inside them.
            shade = 0.55 + 0.45 * (np.sin(2 * np.pi * sprite.stripes * u) > 0)
            frames[mask] = colour * shade[mask][:, None]
        else:
            frames[mask] = colour
    return with_noise(frames, rng, noise)


def _random_sprite(rng: np.random.Generator, params: dict) -> Sprite:
    height, width, num_frames = params["height"], params["width"], params["num_frames"]
    t = np.arange(num_frames, dtype=np.float64)
    y0, x0 = rng.uniform(0, height), rng.uniform(0, width)
    kind = rng.choice(["straight", "oscillate", "orbit", "still"], p=[0.45, 0.2, 0.15, 0.2])
    if kind == "straight":
        angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 3.5)
        ys, xs = y0 + speed * np.sin(angle) * t, x0 + speed * np.cos(angle) * t
    elif kind == "oscillate":
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
        swing = rng.uniform(0.05, 0.25) * width * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        ys, xs = y0 + swing * np.sin(angle), x0 + swing * np.cos(angle)
    elif kind == "orbit":
        ys, xs = _orbit(rng, t, y0, x0, min(height, width))
    else:
        ys, xs = y0 + rng.normal(0, 0.5, num_frames), x0 + rng.normal(0, 0.5, num_frames)
    base = rng.uniform(0.06, 0.22) * min(height, width)
    growth = rng.choice([1.0, rng.uniform(0.4, 2.2)], p=[0.6, 0.4])
    sizes = base * np.linspace(1.0, growth, num_frames)
    spin = rng.choice([0.0, rng.uniform(-0.3, 0.3)], p=[0.6, 0.4])
    return Sprite(ys, xs, sizes, rng.uniform(0, np.pi) + spin * t, str(rng.choice(SHAPES)),
                  float(rng.choice([0.0, rng.uniform(0.05, 0.2)])))


def _class_sprite(name: str, rng: np.random.Generator, params: dict) -> Sprite:
    """A sprite whose motion is the class: the speeds and sizes of the default set's classes."""
    height, width, num_frames = params["height"], params["width"], params["num_frames"]
    t = np.arange(num_frames, dtype=np.float64)
    y0, x0 = rng.uniform(0, height), rng.uniform(0, width)
    ys, xs = np.full_like(t, y0), np.full_like(t, x0)
    size = rng.uniform(0.12, 0.2) * min(height, width)
    sizes, spin, shape = np.full_like(t, size), 0.0, str(rng.choice(["disc", "square"]))
    if "_" in name:  # diagonal: up_left, down_right, ...
        vertical, horizontal = name.split("_")
        speed = rng.uniform(1.0, 3.0) / np.sqrt(2)
        ys = y0 + (speed if vertical == "down" else -speed) * t
        xs = x0 + (speed if horizontal == "right" else -speed) * t
    elif name in ("grow", "shrink"):
        small, large = rng.uniform(0.05, 0.09), rng.uniform(0.2, 0.3)
        start, end = (small, large) if name == "grow" else (large, small)
        sizes = min(height, width) * np.linspace(start, end, num_frames)
    elif name == "orbit":
        ys, xs = _orbit(rng, t, y0, x0, min(height, width))
    else:  # spin: a bar or striped square turning in place
        spin, shape = rng.choice([-1, 1]) * rng.uniform(0.12, 0.3), str(rng.choice(["bar", "square"]))
    # Upright like the default set's shapes, unless spinning is the class.
    angles = (rng.uniform(0, np.pi) if name == "spin" else 0.0) + spin * t
    return Sprite(ys, xs, sizes, angles, shape, float(rng.uniform(0.08, 0.15)) if name == "spin" else 0.0)


def _orbit(rng: np.random.Generator, t: np.ndarray, y0: float, x0: float, side: int) -> tuple[np.ndarray, np.ndarray]:
    radius, step = rng.uniform(0.08, 0.25) * side, rng.choice([-1, 1]) * rng.uniform(2 * np.pi / 24, 2 * np.pi / 10)
    phase = rng.uniform(0, 2 * np.pi)
    return y0 + radius * np.sin(step * t + phase), x0 + radius * np.cos(step * t + phase)


def _sprite_mask(sprite: Sprite, *, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(bool [T, H, W] where the sprite lies, float [T, H, W] coordinate along its own x axis)."""
    dy, dx = torus_offsets(sprite.ys, sprite.xs, height=height, width=width)
    cos, sin = np.cos(sprite.angles)[:, None, None], np.sin(sprite.angles)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    size = sprite.sizes[:, None, None]
    if sprite.shape == "disc":
        mask = u**2 + v**2 <= size**2
    elif sprite.shape == "ring":
        mask = (u**2 + v**2 <= size**2) & (u**2 + v**2 >= (0.55 * size) ** 2)
    elif sprite.shape == "bar":
        mask = (np.abs(u) <= size) & (np.abs(v) <= 0.35 * size)
    else:
        mask = (np.abs(u) <= size) & (np.abs(v) <= size)
    return mask, u
