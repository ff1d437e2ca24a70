"""Shared pytest fixtures.

Datasets
--------
`synthetic_small`: a real synthetic video set (6 motion classes x 4 videos, 96x128, 40 frames,
alternating mp4/avi), generated once per test session. Treat it as read-only: tests that need to
add, break or remove files copy it into their own `tmp_path` first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vjepa_core.data.synthetic import make_synthetic

SYNTHETIC_SMALL = {"videos_per_class": 4, "height": 96, "width": 128, "num_frames": 40, "fps": 12, "seed": 0}


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder `<tmp>/synthetic/<class>/<class>_<i:03d>.<mp4|avi>` plus flip_pairs.json, synthetic.json."""
    return make_synthetic(tmp_path_factory.mktemp("datasets") / "synthetic", **SYNTHETIC_SMALL)
