"""Shared pytest fixtures, and the test tiers. Helpers that test files import live in tests/support.py.

Tiers
-----
Each test carries the marker of its folder, and `pytest tests/<tier>` (or `pytest -m <tier>`) runs one:
- `unit` (tests/unit): tiny models and small synthetic sets in one process, about a minute for the
  whole tier: no trained runs, no `runner` and no processes that race or get killed (subprocesses only
  for small things: a pid that is gone, what an import loads, git);
- `integration` (tests/integration): real runs (`run_experiment`, the CLI end to end), processes racing
  for the warehouse, the cache and the claims, kills and full disks;
- `apps` (tests/apps): the dashboard and the demo; `browser` (tests/browser): headless Chromium.

Datasets
--------
`synthetic_small`: a real synthetic video set (6 motion classes x 4 videos, 96x128, 40 frames,
alternating mp4/avi), generated once per test session. Treat it as read-only: tests that need to
add, break or remove files copy it into their own `tmp_path` first.

Runs
----
`trained_runs`: a warehouse + results folder filled by the real runner (3 strategies x 2 seeds on
`synthetic_small`, tiny preset, plus one failed run): what the dashboard and demo tests read.
`dashboard_runs`: a copy of that warehouse plus cheap 1-epoch runs varying data size, frames, lr and
LoRA rank, under a matrix marked running, and `runner embed`'s vectors of `synthetic_small`: every
dashboard page has something to draw.

Artifact environments
---------------------
`artifact_envs`: `tests.artifact_env.ArtifactEnvs`, one new virtual environment per requirement set and session,
built from nothing but what a released artifact declares (a Space's requirements.txt, a card's `pip install`
line); tests only run their artifact in it.

Disks
-----
`small_disk(size_kib)`: a real tmpfs of that size, mounted for one test (skipped where mounting is
refused): where the disk-full tests put `--results`. The disk itself is `tests.disks.SmallDisk`,
which the disk-full benchmark borrows (both run from a checkout; nothing installed imports either).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio._backends._asyncio  # noqa: F401  (see below)
import pytest
import torch

from tests.artifact_env import ArtifactEnvs
from tests.disks import MountRefused, SmallDisk
from tests.support import SYNTHETIC_SMALL, TrainedRuns, add_dashboard_variety, train_fixture_runs
from vjepa_core.data.synthetic import make_synthetic

TIERS = ("unit", "integration", "apps", "browser")

# The tests' models are tiny: one intra-op thread does their ops faster than two (no hand-offs on tensors of
# a few kB), and far faster when other jobs share the cores, where a second thread spins waiting for the
# first. The processes the tests start inherit the same count (OMP_NUM_THREADS, unless set already), so that
# numbers compared across processes come from the same arithmetic.
torch.set_num_threads(int(os.environ.setdefault("OMP_NUM_THREADS", "1")))
# Inference runs the eager fp32 model unless a test asks for an engine: preparing the default engine (an ONNX
# export, its quantization and its check against fp32, seconds per checkpoint) would add minutes to the suite.
# The engines' own tests ask for `auto` and each engine by name (test_engines*, predict, embed, demo).
os.environ.setdefault("VJEPA_ENGINE", "fp32")

# pytest rewrites the asserts of every installed pytest plugin's package, anyio's too (even with -p no:anyio),
# and anyio imports its asyncio backend on a server's first request, in the server's thread. Python 3.11's
# parser is not thread-safe there ("SystemError: AST constructor recursion depth mismatch" under load, and the
# demo's first request fails): the import above does that rewrite once, in the main thread.


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder `<tmp>/synthetic/<class>/<class>_<i:03d>.<mp4|avi>` plus flip_pairs.json, synthetic.json."""
    return make_synthetic(tmp_path_factory.mktemp("datasets") / "synthetic", **SYNTHETIC_SMALL)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> TrainedRuns:
    """`tests.support.train_fixture_runs` on `synthetic_small`. Read-only: copy the warehouse before writing to it."""
    return train_fixture_runs(tmp_path_factory.mktemp("trained"), synthetic_small)


@pytest.fixture(scope="session")
def dashboard_runs(tmp_path_factory: pytest.TempPathFactory, trained_runs: TrainedRuns,
                   synthetic_small: Path) -> TrainedRuns:
    """`trained_runs`' warehouse copied, plus `tests.support.DASHBOARD_VARIETY` (matrix still "running")."""
    return add_dashboard_variety(tmp_path_factory.mktemp("dashboard"), trained_runs, synthetic_small)


@pytest.fixture(scope="session")
def artifact_envs(tmp_path_factory: pytest.TempPathFactory) -> ArtifactEnvs:
    return ArtifactEnvs(tmp_path_factory.mktemp("artifact-envs"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], SmallDisk]]:
    """`small_disk(size_kib)` mounts a fresh tmpfs of that size under tmp_path; all are unmounted after the test."""
    disks: list[SmallDisk] = []

    def mount(size_kib: int) -> SmallDisk:
        try:
            disks.append(SmallDisk(tmp_path / f"disk{len(disks)}", size_kib))
        except MountRefused as refused:
            pytest.skip(f"cannot mount a small tmpfs here ({refused}): the disk-full tests need root")
        return disks[-1]

    yield mount
    for disk in disks:
        disk.unmount()
