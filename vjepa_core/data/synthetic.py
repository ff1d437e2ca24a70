"""A built-in dataset of real, labelled video files whose classes need motion to tell apart.

`make_synthetic(out_dir)` writes `out_dir/<class>/<class>_<i:03d>.<mp4|avi>` (uint8 RGB frames
[num_frames, height, width, 3] encoded with PyAV: libx264/yuv420p in mp4, mpeg4 in avi), plus
`flip_pairs.json` (mirroring turns "left" into "right") and `synthetic.json` (the parameters).
Each video is a textured background with one or two shapes moving in the class's direction
(`up`, `down`, `left`, `right`), oscillating (`wave`) or jittering in place (`still`), plus
Gaussian pixel noise. Start positions are uniform over the frame and shapes wrap around the
edges, so no single frame reveals the class: only the order of frames does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from vjepa_core.errors import UserError
from vjepa_core.progress import progress_bar
from vjepa_core.store.atomic import exclusive, staged_file, write_text

logger = logging.getLogger(__name__)

SYNTHETIC_CLASSES = ("up", "down", "left", "right", "wave", "still")
FLIP_PAIRS = {"left": "right", "right": "left"}
MANIFEST = "synthetic.json"
LOCK = ".generating.lock"  # held while a process writes the set
ELSEWHERE = "choose a folder on another disk (--results DIR, or make-synthetic's DIR)"
# Bump when the rendering changes, so existing folders are regenerated rather than reused.
GENERATOR_VERSION = 2
# codec name and encoder options per container; one encoder thread keeps output byte-identical.
_CODECS: dict[str, tuple[str, dict[str, str]]] = {
    "mp4": ("libx264", {"crf": "18", "preset": "veryfast"}),
    "avi": ("mpeg4", {"qmax": "4"}),  # capped quantiser: no blocky frames on noisy input
}


def synthetic_dir(results_dir: str | os.PathLike[str]) -> Path:
    """Default home of the synthetic set: `<results>/datasets/synthetic`."""
    return Path(results_dir) / "datasets" / "synthetic"


def make_synthetic(
    out_dir: str | os.PathLike[str],
    *,
    classes: Sequence[str] = SYNTHETIC_CLASSES,
    videos_per_class: int = 60,
    height: int = 96,
    width: int = 128,
    num_frames: int = 40,
    fps: int = 12,
    noise: float = 0.03,
    texture: float = 0.1,
    seed: int = 0,
    formats: Sequence[str] = ("mp4", "avi"),
    progress: bool = False,
) -> Path:
    """Write the synthetic dataset to `out_dir` (a no-op if it already holds these parameters)."""
    out = Path(out_dir)
    params = _params(classes=classes, videos_per_class=videos_per_class, height=height, width=width,
                     num_frames=num_frames, fps=fps, noise=noise, texture=texture, seed=seed, formats=formats)
    if _is_complete(out, params):
        logger.debug("synthetic set in %s is up to date", out)
        return out
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another place for the synthetic set")
    out.mkdir(parents=True, exist_ok=True)
    # Two runners starting at once must not write (or clear) the same folder together: one waits.
    with exclusive(out / LOCK):
        if not _is_complete(out, params):  # the other may have finished it meanwhile
            _generate(out, params, progress=progress)
    return out


def _generate(out: Path, params: dict[str, Any], *, progress: bool) -> None:
    _clear_previous(out)
    # Written first as incomplete, so an interrupted run is recognised and regenerated next time.
    _write_manifest(out, params, complete=False)
    jobs = [(name, i) for name in params["classes"] for i in range(params["videos_per_class"])]
    for name, i in progress_bar(jobs, desc="synthetic videos", unit="videos", enabled=progress, leave=True):
        frames = render_video(name, i, params)
        ext = params["formats"][i % len(params["formats"])]
        _encode(frames, out / name / video_name(name, i, ext), fps=params["fps"])
    write_text(out / "flip_pairs.json", json.dumps(_flip_pairs(params["classes"]), indent=2) + "\n",
               elsewhere=ELSEWHERE)
    _write_manifest(out, params, complete=True)


def video_name(name: str, index: int, ext: str) -> str:
    return f"{name}_{index:03d}.{ext}"


def render_video(name: str, index: int, params: dict[str, Any]) -> np.ndarray:
    """uint8 [num_frames, height, width, 3] RGB frames of video `index` of class `name`."""
    # Seeded by the class *name* and index, so adding a class does not change the others' videos.
    rng = np.random.default_rng([params["seed"], zlib.crc32(name.encode()), index])
    height, width, num_frames = params["height"], params["width"], params["num_frames"]
    background = _background(rng, height, width, params.get("texture", 1.0))
    frames = np.broadcast_to(background, (num_frames, height, width, 3)).copy()
    for _ in range(int(rng.integers(1, 3))):
        ys, xs = _trajectory(name, rng, num_frames=num_frames, height=height, width=width)
        mask = _shape_mask(rng, ys, xs, height=height, width=width)
        frames[mask] = _shape_colour(rng, background)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(params["noise"] * 255)
    return np.clip(frames, 0, 255).round().astype(np.uint8)


def _params(*, classes: Sequence[str], videos_per_class: int, height: int, width: int, num_frames: int,
            fps: int, noise: float, texture: float, seed: int, formats: Sequence[str]) -> dict[str, Any]:
    """Validated, JSON-ready generation parameters (what `synthetic.json` stores)."""
    unknown = [c for c in classes if c not in SYNTHETIC_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise UserError(f"synthetic classes must be distinct names from {', '.join(SYNTHETIC_CLASSES)}; "
                        f"got {', '.join(classes) or 'none'}")
    bad_formats = [f for f in formats if f not in _CODECS]
    if bad_formats or not formats:
        raise UserError(f"synthetic formats must be from {', '.join(_CODECS)}; got {', '.join(formats) or 'none'}")
    # yuv420p needs even sizes; the shapes need room to move.
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise UserError(f"synthetic height and width must be even and at least 16; got {height}x{width}")
    if videos_per_class < 1 or num_frames < 2 or fps < 1 or not 0 <= noise <= 1 or not 0 <= texture <= 1:
        raise UserError(f"synthetic: need videos_per_class >= 1, num_frames >= 2, fps >= 1, 0 <= noise <= 1, "
                        f"0 <= texture <= 1; got {videos_per_class}, {num_frames}, {fps}, {noise}, {texture}")
    return {"version": GENERATOR_VERSION, "classes": list(classes), "videos_per_class": videos_per_class,
            "height": height, "width": width, "num_frames": num_frames, "fps": fps, "noise": float(noise),
            "texture": float(texture),
            "seed": seed, "formats": list(formats)}


def _expected_files(out: Path, params: dict[str, Any]) -> list[Path]:
    formats = params["formats"]
    return [out / name / video_name(name, i, formats[i % len(formats)])
            for name in params["classes"] for i in range(params["videos_per_class"])]


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out: Path, params: dict[str, Any]) -> bool:
    manifest = _read_manifest(out)
    if manifest is None or not manifest.get("complete") or manifest.get("params") != params:
        return False
    return all(p.is_file() and p.stat().st_size > 0 for p in _expected_files(out, params))


def _clear_previous(out: Path) -> None:
    """Remove an earlier synthetic set; refuse to touch a folder that is not one."""
    manifest = _read_manifest(out)
    if manifest is None:
        if any(p.name != LOCK for p in out.iterdir()):
            raise UserError(f"{out}: folder is not empty and holds no {MANIFEST}; "
                            "refusing to overwrite it with the synthetic set")
        return
    logger.info("regenerating the synthetic set in %s (parameters changed or incomplete)", out)
    for name in manifest.get("params", {}).get("classes", []):
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def _write_manifest(out: Path, params: dict[str, Any], *, complete: bool) -> None:
    write_text(out / MANIFEST, json.dumps({"params": params, "complete": complete}, indent=2) + "\n",
               elsewhere=ELSEWHERE)


def _flip_pairs(classes: Sequence[str]) -> dict[str, str]:
    return {a: b for a, b in FLIP_PAIRS.items() if a in classes and b in classes}


def _background(rng: np.random.Generator, height: int, width: int, texture: float) -> np.ndarray:
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


def _trajectory(name: str, rng: np.random.Generator, *, num_frames: int, height: int,
                width: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre positions (y, x), float [num_frames] each, for one shape of class `name`."""
    t = np.arange(num_frames, dtype=np.float64)
    y0, x0 = rng.uniform(0, height), rng.uniform(0, width)
    speed = rng.uniform(1.0, 3.0)
    ys, xs = np.full_like(t, y0), np.full_like(t, x0)
    if name in ("up", "down"):
        ys = y0 + (speed if name == "down" else -speed) * t
    elif name in ("left", "right"):
        xs = x0 + (speed if name == "right" else -speed) * t
    elif name == "wave":
        # A period of 8-16 frames, so a 16-frame clip sees at least one change of direction.
        period, amplitude = rng.uniform(8, 16), rng.uniform(0.1, 0.2) * width
        xs = x0 + amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    else:  # still: sub-pixel jitter only, so "still" is not told apart by perfect stillness
        ys, xs = ys + rng.normal(0, 0.5, num_frames), xs + rng.normal(0, 0.5, num_frames)
    return ys, xs


def _shape_mask(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, *, height: int,
                width: int) -> np.ndarray:
    """bool [T, H, W]: a disc or a square at each centre, wrapping around the frame's edges."""
    size = rng.uniform(0.12, 0.2) * min(height, width)
    # Distances on a torus: a shape leaving one edge comes back at the other, so it stays in view.
    dy = (np.arange(height)[None, :, None] - ys[:, None, None] + height / 2) % height - height / 2
    dx = (np.arange(width)[None, None, :] - xs[:, None, None] + width / 2) % width - width / 2
    if rng.random() < 0.5:
        return dy**2 + dx**2 <= size**2
    return (np.abs(dy) <= size) & (np.abs(dx) <= size)


def _shape_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background's mean colour."""
    colour = rng.uniform(0, 255, 3)
    mean = background.mean(axis=(0, 1))
    if np.abs(colour - mean).mean() < 60:
        # Push every channel away from the background, towards whichever end is further.
        colour = np.where(mean > 127, rng.uniform(0, 50, 3), rng.uniform(205, 255, 3))
    return colour.astype(np.float32)


def _encode(frames: np.ndarray, path: Path, *, fps: int) -> None:
    """Encode uint8 [T, H, W, 3] RGB frames to `path` (written under a temporary name first)."""
    codec, options = _CODECS[path.suffix[1:]]
    # The container is named explicitly: the temporary name's suffix says nothing to PyAV.
    with staged_file(path, elsewhere=ELSEWHERE) as tmp, av.open(str(tmp), mode="w", format=path.suffix[1:]) as out:
        stream = out.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
