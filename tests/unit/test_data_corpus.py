"""The source task and the unlabelled corpus: motions as named, seeded, and never the default set's videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vjepa_core.data import discover_dataset, make_synthetic
from vjepa_core.data.corpus import SOURCE_CLASSES, _class_sprite, render_corpus_video, render_source_video
from vjepa_core.data.synthetic import SYNTHETIC_CLASSES, class_names, render_video
from vjepa_core.errors import UserError

PARAMS = {"seed": 0, "height": 96, "width": 128, "num_frames": 40, "noise": 0.0, "texture": 0.1}


@pytest.mark.parametrize(("name", "dy", "dx"), [("up_left", -1, -1), ("up_right", -1, 1), ("down_left", 1, -1),
                                                ("down_right", 1, 1)])
def test_diagonal_classes_move_along_both_axes(name: str, dy: int, dx: int) -> None:
    for index in range(3):
        sprite = _class_sprite(name, np.random.default_rng(index), PARAMS)
        steps_y, steps_x = np.diff(sprite.ys), np.diff(sprite.xs)
        assert (np.sign(steps_y) == dy).all() and (np.sign(steps_x) == dx).all()
        assert np.allclose(np.abs(steps_y), np.abs(steps_x))  # 45 degrees
        assert 1.0 <= np.hypot(steps_y[0], steps_x[0]) <= 3.0  # the default classes' speeds


def test_grow_shrink_orbit_and_spin_do_what_they_say() -> None:
    rng = np.random.default_rng(0)
    grow, shrink = _class_sprite("grow", rng, PARAMS), _class_sprite("shrink", rng, PARAMS)
    assert grow.sizes[-1] > 2 * grow.sizes[0] and shrink.sizes[0] > 2 * shrink.sizes[-1]
    orbit = _class_sprite("orbit", rng, PARAMS)
    centre = np.array([orbit.ys.mean(), orbit.xs.mean()])
    radii = np.hypot(orbit.ys - centre[0], orbit.xs - centre[1])
    assert radii.std() < 0.2 * radii.mean() and radii.mean() > 5  # a circle, not a line
    spin = _class_sprite("spin", rng, PARAMS)
    assert abs(spin.angles[-1] - spin.angles[0]) > 3 and np.ptp(spin.ys) == np.ptp(spin.xs) == 0


def test_rendered_videos_are_seeded_and_change_over_time() -> None:
    for name in SOURCE_CLASSES:
        video = render_source_video(name, 1, PARAMS)
        assert video.shape == (40, 96, 128, 3) and video.dtype == np.uint8
        assert np.array_equal(video, render_source_video(name, 1, PARAMS))
        assert (video[0] != video[-1]).any(), name
    corpus = [render_corpus_video(i, {**PARAMS, "texture": 0.5}) for i in range(4)]
    assert np.array_equal(corpus[0], render_corpus_video(0, {**PARAMS, "texture": 0.5}))
    assert all((a != b).any() for a, b in zip(corpus, corpus[1:], strict=False))


def test_the_corpus_never_holds_a_default_set_video() -> None:
    labelled = {render_video(name, i, PARAMS)[0].tobytes() for name in SYNTHETIC_CLASSES for i in range(3)}
    assert not any(render_corpus_video(i, PARAMS)[0].tobytes() in labelled for i in range(10))


def test_make_synthetic_writes_a_source_set_and_an_unlabelled_corpus(tmp_path: Path) -> None:
    small = {"videos_per_class": 1, "height": 32, "width": 48, "num_frames": 8}
    source = discover_dataset(make_synthetic(tmp_path / "source", classes=SOURCE_CLASSES, **small))
    assert source.classes == tuple(sorted(SOURCE_CLASSES))
    assert source.flip_pairs["up_left"] == "up_right" and "grow" not in source.flip_pairs
    corpus = discover_dataset(make_synthetic(tmp_path / "corpus", classes=("unlabelled",),
                                             **{**small, "videos_per_class": 3}))
    assert corpus.classes == ("unlabelled",) and len(corpus.items) == 3
    with pytest.raises(UserError, match="corpus of its own"):
        make_synthetic(tmp_path / "mixed", classes=("up", "unlabelled"), **small)


def test_class_name_groups() -> None:
    assert class_names("default") == SYNTHETIC_CLASSES
    assert class_names("source") == SOURCE_CLASSES
    assert class_names("up, grow ,unlabelled") == ("up", "grow", "unlabelled")
