"""A run's provenance names the code that ran: the checkout's commit, or none when installed from a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import peft
import torch
import torchvision
import transformers

import vjepa_core
from vjepa_core.paths import PACKAGE_PARENT
from vjepa_core.provenance import git_sha, provenance_columns, versions


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def make_repo(root: Path) -> str:
    """A real repository with one commit; returns its sha."""
    root.mkdir(parents=True)
    git("init", "-q", cwd=root)
    (root / "README").write_text("x\n")
    git("add", "README", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one", cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


def test_a_checkout_gives_its_head(tmp_path: Path) -> None:
    sha = make_repo(tmp_path / "checkout")
    assert git_sha(tmp_path / "checkout") == sha


def test_a_folder_inside_a_repository_is_not_a_checkout(tmp_path: Path) -> None:
    """A virtualenv inside a project: its site-packages sit in that project's work tree, but is not its code."""
    make_repo(tmp_path / "project")
    site = tmp_path / "project" / ".venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    assert git_sha(site) is None
    assert git_sha(tmp_path / "no-repo") is None


def test_installed_files_without_a_repository_record_no_sha(tmp_path: Path) -> None:
    """The package copied as a wheel lays it out (site-packages/vjepa_core/...), imported in a fresh process
    whose working directory is a repository: git_sha is None, not that repository's HEAD."""
    site = tmp_path / "site-packages" / "vjepa_core"
    site.mkdir(parents=True)
    for name in ("__init__.py", "paths.py", "provenance.py"):
        shutil.copy(Path(vjepa_core.__file__).parent / name, site / name)
    make_repo(tmp_path / "elsewhere")
    code = "import vjepa_core.provenance as p; print(p.git_sha(), p.PACKAGE_PARENT)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "elsewhere", capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site-packages")})
    assert out.stdout.split() == ["None", str(tmp_path / "site-packages")]


def test_this_checkout_records_its_own_head() -> None:
    """Run from the source checkout (editable install, or PYTHONPATH): the sha is HEAD of that checkout."""
    if not (PACKAGE_PARENT / ".git").exists():
        assert git_sha() is None  # tests run from an unpacked sdist
        return
    assert git_sha() == git("rev-parse", "HEAD", cwd=PACKAGE_PARENT)


def test_versions_name_the_libraries_a_result_depends_on() -> None:
    assert versions() == {"vjepa_lab": vjepa_core.__version__, "python": sys.version.split()[0],
                          "torch": torch.__version__, "torchvision": torchvision.__version__,
                          "transformers": transformers.__version__, "peft": peft.__version__}
    assert set(provenance_columns()) == {"git_sha", "versions"}
