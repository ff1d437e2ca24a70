"""synthetic: real, seeded video files whose class is in the motion, regenerated only when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vjepa_core.data import SYNTHETIC_CLASSES, discover_dataset, make_synthetic, probe_video, synthetic, synthetic_dir
from vjepa_core.data.synthetic import _trajectory, render_video
from vjepa_core.errors import UserError

REPO = Path(__file__).resolve().parents[2]
TINY = {"videos_per_class": 2, "height": 32, "width": 48, "num_frames": 12}


def _render(name: str, index: int, noise: float = 0.0) -> np.ndarray:
    params = {"seed": 0, "height": 96, "width": 128, "num_frames": 40, "noise": noise}
    return render_video(name, index, params)


def _motion(frames: np.ndarray, *, gap: int = 3, reach: int = 10) -> np.ndarray:
    """Mean (dy, dx) per `gap` frames: the shift along y or x of frame t that best matches frame
    t + gap on the pixels that changed (the background is static, so only the shapes change)."""
    shifts = [(0, d) for d in range(-reach, reach + 1)] + [(d, 0) for d in range(-reach, reach + 1) if d]
    found = []
    for t in range(0, len(frames) - gap, 8):
        a, b = frames[t].astype(np.float32), frames[t + gap].astype(np.float32)
        changed = np.abs(a - b).sum(-1) > 30
        if changed.sum() < 20:
            found.append((0, 0))
            continue
        errors = {shift: np.abs(np.roll(a, shift, (0, 1))[changed] - b[changed]).mean() for shift in shifts}
        found.append(min(errors, key=errors.__getitem__))
    return np.mean(found, axis=0)


def test_layout_and_metadata(synthetic_small: Path) -> None:
    for name in SYNTHETIC_CLASSES:
        files = sorted(p.name for p in (synthetic_small / name).iterdir())
        assert files == [f"{name}_000.mp4", f"{name}_001.avi", f"{name}_002.mp4", f"{name}_003.avi"]
    assert json.loads((synthetic_small / "flip_pairs.json").read_text()) == {"left": "right", "right": "left"}
    manifest = json.loads((synthetic_small / "synthetic.json").read_text())
    assert manifest["complete"] and manifest["params"]["videos_per_class"] == 4
    assert discover_dataset(synthetic_small).classes == tuple(sorted(SYNTHETIC_CLASSES))


def test_every_video_decodes_with_the_asked_size(synthetic_small: Path) -> None:
    for path in sorted(synthetic_small.glob("*/*.*")):
        info = probe_video(path)
        assert (info.num_frames, info.height, info.width, info.fps) == (40, 96, 128, 12.0), path


@pytest.mark.parametrize(("name", "axis", "sign"), [("up", 0, -1), ("down", 0, 1), ("left", 1, -1), ("right", 1, 1)])
def test_shapes_move_in_the_class_direction(name: str, axis: int, sign: int) -> None:
    for index in range(2):
        motion = _motion(_render(name, index))
        assert sign * motion[axis] >= 2 and abs(motion[1 - axis]) < 1, (name, index, motion)


def _changed(frames: np.ndarray, gap: int = 3) -> float:
    """Fraction of pixels that change clearly over `gap` frames."""
    return float(np.mean([(np.abs(frames[t].astype(np.int16) - frames[t + gap]).sum(-1) > 30).mean()
                          for t in range(0, len(frames) - gap, 4)]))


def test_still_stays_and_wave_turns_back() -> None:
    # "still" only jitters by a fraction of a pixel: a few edge pixels change, far fewer than when moving.
    assert max(_changed(_render("still", i)) for i in range(3)) < 0.015
    assert min(_changed(_render(name, 0)) for name in ("up", "left", "wave")) > 0.03
    frames = _render("wave", 0)
    steps = [_motion(frames[t:t + 4], gap=3)[1] for t in range(0, 36, 3)]
    assert min(steps) < -1 and max(steps) > 1


def test_the_first_frame_does_not_give_the_class_away() -> None:
    # Shapes start anywhere in the frame whatever the class, so position at t=0 says nothing.
    for name in SYNTHETIC_CLASSES:
        rng = np.random.default_rng(0)
        starts = np.array([_trajectory(name, rng, num_frames=2, height=96, width=128) for _ in range(200)])[..., 0]
        starts %= [96, 128]  # positions wrap around the frame's edges
        assert starts.min(axis=0) == pytest.approx([0, 0], abs=8), name
        assert starts.max(axis=0) == pytest.approx([96, 128], abs=8), name


# Writes a set in a fresh process, where glibc fills memory with the given byte when it is allocated and freed:
# an encoder that reads memory it never wrote gives different bytes under two such fills, every time.
WRITE_SET = """
import sys
from vjepa_core.data import make_synthetic
make_synthetic(sys.argv[1], classes=("left", "wave"), videos_per_class=4, height=32, width=48, num_frames=12)
"""


def test_same_parameters_give_identical_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out, fill in ((first, "1"), (second, "254")):
        subprocess.run([sys.executable, "-c", WRITE_SET, str(out)], check=True, cwd=REPO,
                       env={**os.environ, "MALLOC_PERTURB_": fill})
    assert len(list(first.glob("*/*.mp4"))) == 4
    for path in sorted(first.glob("*/*.*")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()
    np.testing.assert_array_equal(_render("left", 1, 0.08), _render("left", 1, 0.08))
    assert not np.array_equal(_render("left", 1), _render("left", 2))


def test_a_large_set_is_written_by_several_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "PER_WORKER", 2)  # six videos: two worker processes
    out = make_synthetic(tmp_path / "syn", classes=("up", "wave", "still"), **TINY)
    files = sorted(path.relative_to(out).as_posix() for path in out.glob("*/*.*"))
    assert files == [f"{name}/{name}_{i:03d}.{ext}" for name in ("still", "up", "wave")
                     for i, ext in ((0, "mp4"), (1, "avi"))]
    assert all(probe_video(out / name).num_frames == TINY["num_frames"] for name in files)
    assert json.loads((out / "synthetic.json").read_text())["complete"]


def test_second_call_is_a_fast_no_op_and_new_parameters_regenerate(tmp_path: Path) -> None:
    out = make_synthetic(tmp_path / "syn", classes=("up", "down"), **TINY)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.*")}
    start = time.perf_counter()
    make_synthetic(tmp_path / "syn", classes=("up", "down"), **TINY)
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.*")} == stamps
    make_synthetic(tmp_path / "syn", classes=("left", "still"), **{**TINY, "videos_per_class": 3})
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["left", "still"]
    assert len(list(out.glob("*/*.*"))) == 6
    assert json.loads((out / "flip_pairs.json").read_text()) == {}


def test_an_interrupted_set_is_regenerated(tmp_path: Path) -> None:
    out = make_synthetic(tmp_path / "syn", classes=("up",), **TINY)
    (out / "up" / "up_001.avi").unlink()
    make_synthetic(tmp_path / "syn", classes=("up",), **TINY)
    assert (out / "up" / "up_001.avi").stat().st_size > 0


def test_refuses_to_overwrite_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(UserError, match=r"mine: folder is not empty and holds no synthetic.json"):
        make_synthetic(tmp_path / "mine", **TINY)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"classes": ("up", "jump")}, "synthetic classes must be distinct names"),
    ({"formats": ("gif",)}, "synthetic formats must be from mp4, avi"),
    ({"height": 33}, "must be even"),
    ({"videos_per_class": 0}, "videos_per_class >= 1"),
])
def test_bad_parameters_are_user_errors(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_synthetic(tmp_path / "syn", **kwargs)  # type: ignore[arg-type]


def test_default_location_is_under_results(tmp_path: Path) -> None:
    assert synthetic_dir(tmp_path / "results") == tmp_path / "results" / "datasets" / "synthetic"
