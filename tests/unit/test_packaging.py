"""What a wheel carries: the version written once, the licence it declares, and only the installed packages; and
the lock `make run` and `make test` install from, against the ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def locked_versions() -> dict[str, str]:
    """requirements.lock's pins that apply to this interpreter and platform: name -> version."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line.replace(" ; ", ";"))
            if requirement.marker is None or requirement.marker.evaluate():
                (spec,) = requirement.specifier
                assert spec.operator == "==" and canonicalize_name(requirement.name) not in pins, line
                pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_the_lock_pins_every_dependency_and_extra_within_its_range() -> None:
    """`make lock` ran after the last change to the ranges: every requirement of the package and of the extras the
    tests use has one pin here, inside its range."""
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    pins = locked_versions()
    for line in [*project["dependencies"], *extras["test"], *extras["ray"]]:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not in requirements.lock: run make lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), f"{line}: locked {pins[name]}"


def test_the_lock_holds_torch_where_the_makefile_pins_it() -> None:
    pins = locked_versions()
    makefile = (ROOT / "Makefile").read_text()
    (line,) = [line for line in makefile.splitlines() if line.startswith("TORCH_PINS :=")]
    assert line.split(":=")[1].split() == [f"{name}=={pins[name]}" for name in ("torch", "torchvision")]
