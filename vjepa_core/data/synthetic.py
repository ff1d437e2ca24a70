"""A built-in dataset of real, labelled video files whose classes need motion to tell apart: the offline default.

`make_synthetic(out_dir)` writes `out_dir/<class>/<class>_<i>.<mp4|avi>`: shapes moving up, down, left or right,
waving or jittering in place over a textured background, starting anywhere and wrapping around the edges, so
that no single frame reveals the class, only their order does; plus `flip_pairs.json` (mirroring swaps left and
right). The source classes and the unlabelled corpus (`corpus`) are written the same way, and
`write_long_video` writes one untrimmed video whose class changes every few seconds, with its segments: the
ground truth of a timeline.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import multiprocessing
import os
import shutil
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import av
import numpy as np

from vjepa_core.data.corpus import SOURCE_CLASSES, SOURCE_FLIP_PAIRS, render_corpus_video, render_source_video
from vjepa_core.data.drawing import background, shape_colour, torus_offsets, with_noise
from vjepa_core.errors import UserError
from vjepa_core.progress import progress_bar
from vjepa_core.store.atomic import exclusive, staged_file, write_text

logger = logging.getLogger(__name__)

SYNTHETIC_CLASSES = ("up", "down", "left", "right", "wave", "still")
FLIP_PAIRS = {"left": "right", "right": "left"}
UNLABELLED = "unlabelled"
MANIFEST = "synthetic.json"
LOCK = ".generating.lock"  # held while a process writes the set
ELSEWHERE = "choose a folder on another disk (--results DIR, or make-synthetic's DIR)"
# The built-in set's size: enough videos per class for the default study's test and validation splits to
# detect differences of a few points (docs/benchmarks/default-study.md) and 40 training videos per class.
VIDEOS_PER_CLASS = 150
PER_WORKER = 100  # videos below which a second process costs more than it saves
# Bump when the rendering changes, so existing folders are regenerated rather than reused (an encoder option is
# not a change of content: a folder written before one keeps its videos).
GENERATOR_VERSION = 2
# Codec name and encoder options per container. One encoder thread, and no macroblock tree in x264, keep the
# output byte-identical. With x264's macroblock tree on, its bytes depended on what memory held before (two
# values of glibc's MALLOC_PERTURB_ gave two files from the same frames), so a busy machine wrote other bytes.
_CODECS: dict[str, tuple[str, dict[str, str]]] = {
    "mp4": ("libx264", {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}),
    "avi": ("mpeg4", {"qmax": "4"}),  # capped quantiser: no blocky frames on noisy input
}


def synthetic_dir(results_dir: str | os.PathLike[str]) -> Path:
    """Default home of the synthetic set: `<results>/datasets/synthetic`."""
    return Path(results_dir) / "datasets" / "synthetic"


def resolve_data(data: str, results: Path, *, progress: bool = False) -> str:
    """`synthetic` means the built-in generated set under results/ (made on first use); anything else is a path."""
    if data == "synthetic":
        return str(make_synthetic(synthetic_dir(results), progress=progress))
    return data


def make_synthetic(
    out_dir: str | os.PathLike[str],
    *,
    classes: Sequence[str] = SYNTHETIC_CLASSES,
    videos_per_class: int = VIDEOS_PER_CLASS,
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
    write = functools.partial(_write_video, out=out, params=params)
    # Each video is seeded by its class and index, so workers write the same bytes as one process would; a
    # worker only pays for itself on a large set (spawned, so a parent holding torch's threads is never forked).
    workers = min(os.cpu_count() or 1, len(jobs) // PER_WORKER)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            written: Iterator[None] = pool.map(write, jobs, chunksize=8)
        else:
            written = map(write, jobs)
        for _ in progress_bar(written, total=len(jobs), desc="synthetic videos", unit="videos", enabled=progress,
                              leave=True):
            pass
    write_text(out / "flip_pairs.json", json.dumps(_flip_pairs(params["classes"]), indent=2) + "\n",
               elsewhere=ELSEWHERE)
    _write_manifest(out, params, complete=True)


def _write_video(job: tuple[str, int], *, out: Path, params: dict[str, Any]) -> None:
    name, index = job
    ext = params["formats"][index % len(params["formats"])]
    _encode(render_any(name, index, params), out / name / video_name(name, index, ext), fps=params["fps"])


def video_name(name: str, index: int, ext: str) -> str:
    return f"{name}_{index:03d}.{ext}"


def render_any(name: str, index: int, params: dict[str, Any]) -> np.ndarray:
    """Video `index` of any known class: the default six, a source class, or the unlabelled corpus."""
    if name == UNLABELLED:
        return render_corpus_video(index, params)
    if name in SYNTHETIC_CLASSES:
        return render_video(name, index, params)
    return render_source_video(name, index, params)


def class_names(text: str) -> tuple[str, ...]:
    """'up,down' -> the names; 'default' and 'source' stand for their whole lists (as in make-synthetic)."""
    groups = {"default": SYNTHETIC_CLASSES, "source": SOURCE_CLASSES}
    return tuple(name for part in text.split(",") if part.strip()
                 for name in groups.get(part.strip(), (part.strip(),)))


def known_classes() -> tuple[str, ...]:
    return (*SYNTHETIC_CLASSES, *SOURCE_CLASSES, UNLABELLED)


def render_video(name: str, index: int, params: dict[str, Any]) -> np.ndarray:
    """uint8 [num_frames, height, width, 3] RGB frames of video `index` of class `name`."""
    # Seeded by the class *name* and index, so adding a class does not change the others' videos.
    rng = np.random.default_rng([params["seed"], zlib.crc32(name.encode()), index])
    height, width, num_frames = params["height"], params["width"], params["num_frames"]
    wall = background(rng, height, width, params.get("texture", 1.0))
    frames = np.broadcast_to(wall, (num_frames, height, width, 3)).copy()
    for _ in range(int(rng.integers(1, 3))):
        ys, xs = _trajectory(name, rng, num_frames=num_frames, height=height, width=width)
        mask = _shape_mask(rng, ys, xs, height=height, width=width)
        frames[mask] = shape_colour(rng, wall)
    return with_noise(frames, rng, params["noise"])


def _params(*, classes: Sequence[str], videos_per_class: int, height: int, width: int, num_frames: int,
            fps: int, noise: float, texture: float, seed: int, formats: Sequence[str]) -> dict[str, Any]:
    """Validated, JSON-ready generation parameters (what `synthetic.json` stores)."""
    unknown = [c for c in classes if c not in known_classes()]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise UserError(f"synthetic classes must be distinct names from {', '.join(known_classes())}; "
                        f"got {', '.join(classes) or 'none'}")
    if UNLABELLED in classes and len(classes) > 1:
        raise UserError(f"synthetic: '{UNLABELLED}' is a corpus of its own, not a class beside others")
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
    return {a: b for a, b in {**FLIP_PAIRS, **SOURCE_FLIP_PAIRS}.items() if a in classes and b in classes}


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
    dy, dx = torus_offsets(ys, xs, height=height, width=width)
    if rng.random() < 0.5:
        return dy**2 + dx**2 <= size**2
    return (np.abs(dy) <= size) & (np.abs(dx) <= size)


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


# Motion is drawn in the synthetic set's own 96-pixel-high frame and scaled up, so a 1080p long video
# moves like the clips a checkpoint was trained on, only sharper.
_LONG_BASE_HEIGHT = 96


def write_long_video(path: str | os.PathLike[str], *, seconds: float, fps: int = 30, height: int = 1080,
                     width: int = 1920, segment_seconds: float = 4.0, classes: Sequence[str] = SYNTHETIC_CLASSES,
                     seed: int = 0) -> list[tuple[float, float, str]]:
    """Write an untrimmed mp4 (libx264) whose class changes every `segment_seconds`; return the segments.

    Frames are rendered and encoded one at a time, so a 5-minute 1080p video never sits in memory.
    """
    _params(classes=classes, videos_per_class=1, height=height, width=width, num_frames=2, fps=fps, noise=0,
            texture=0.1, seed=seed, formats=("mp4",))
    if not seconds > 0 or not segment_seconds > 0:
        raise UserError(f"long video: seconds and segment_seconds must be > 0; got {seconds}, {segment_seconds}")
    total, per_segment = round(seconds * fps), max(1, round(segment_seconds * fps))
    rng = np.random.default_rng([seed, 7])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    segments = []
    with staged_file(path, elsewhere=ELSEWHERE) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for first in range(0, total, per_segment):
            count = min(per_segment, total - first)
            name = str(rng.choice(list(classes)))
            segments.append((first / fps, (first + count) / fps, name))
            for frame in _segment_frames(name, rng, count=count, height=height, width=width):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return segments


def _segment_frames(name: str, rng: np.random.Generator, *, count: int, height: int, width: int
                    ) -> Iterator[np.ndarray]:
    """uint8 [height, width, 3] frames of one segment of class `name`, one at a time."""
    scale = height / _LONG_BASE_HEIGHT
    base_w = max(16, round(width / scale))
    wall = np.clip(background(rng, height, width, 0.1), 0, 255).astype(np.uint8)
    shapes = []
    for _ in range(int(rng.integers(1, 3))):
        ys, xs = _trajectory(name, rng, num_frames=count, height=_LONG_BASE_HEIGHT, width=base_w)
        size = rng.uniform(0.12, 0.2) * min(_LONG_BASE_HEIGHT, base_w) * scale
        shapes.append((ys * scale, xs * scale, size, bool(rng.random() < 0.5), shape_colour(rng, wall)))
    for t in range(count):
        frame = wall.copy()
        for ys, xs, size, disc, colour in shapes:
            _draw_shape(frame, ys[t], xs[t], size=size, disc=disc, colour=colour)
        yield frame


def _draw_shape(frame: np.ndarray, y: float, x: float, *, size: float, disc: bool, colour: np.ndarray) -> None:
    """Paint a disc or square of half-size `size` centred at (y, x), wrapping around the edges, in place."""
    height, width = frame.shape[:2]
    reach = int(np.ceil(size))
    offsets = np.arange(-reach, reach + 1)
    cy, cx = round(y), round(x)
    dy, dx = offsets[:, None] + (cy - y), offsets[None, :] + (cx - x)
    mask = dy**2 + dx**2 <= size**2 if disc else (np.abs(dy) <= size) & (np.abs(dx) <= size)
    rows, cols = np.ix_((offsets + cy) % height, (offsets + cx) % width)
    patch = frame[rows, cols]
    patch[mask] = colour.round().astype(np.uint8)
    frame[rows, cols] = patch
