"""The artifact environments' own rules (tests/artifact_env.py): pip's sources handed to uv, and a skip that says
why when no registry answers (uv offline, a version its cache does not hold)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.artifact_env import PIP_OPTIONS, ArtifactEnvs, pip_configuration


def test_pips_sources_become_uv_options_in_pairs() -> None:
    options = pip_configuration()
    assert len(options) % 2 == 0 and set(options[::2]) <= set(PIP_OPTIONS.values())


def test_no_reachable_registry_is_a_skip_that_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_OFFLINE", "1")
    with pytest.raises(pytest.skip.Exception, match="no package registry reachable to build the test's own "):
        ArtifactEnvs(tmp_path).python(["six==1.9.0"], what="the test")
