"""What a wheel carries: the version written once, the licence it declares, and only the installed packages."""

from __future__ import annotations

from pathlib import Path

import pytest

import vjepa_core

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vjepa_core.__version__"}
    assert vjepa_core.__version__.count(".") == 2


def test_the_declared_licence_ships() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    assert text.startswith("MIT License") and "vjepa-lab contributors" in text


def test_benchmarks_and_tests_are_not_installed() -> None:
    included = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(included) == ["dashboard*", "demo*", "runner*", "vjepa_core*"]


def test_private_apis_have_upper_bounds() -> None:
    """torch, transformers and duckdb: the code uses their private APIs, so a new major is not assumed to work."""
    pins = {dep.split(">")[0].split("<")[0]: dep for dep in PYPROJECT["project"]["dependencies"]}
    assert {name: "<" in pins[name] for name in ("torch", "transformers", "duckdb")} == dict.fromkeys(
        ("torch", "transformers", "duckdb"), True)
