"""The two commands' install (`make venv`, which `make run` and `make test` start with) on Debian's own Python,
which is externally managed (PEP 668: its pip refuses to install). The environment is made with it and every
package goes there, none into it; a second call does nothing (a stamp keyed by the lock); a Debian Python without
python3-venv (its ensurepip hidden by a bind mount in a private mount namespace, as if the package were not
installed) is one line and exit code 2. A small lock stands in for requirements.lock (its 7 GB: the whole `make
run` on that Python, from a fresh clone, is measured in docs/guides/install.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vjepa_core import __version__

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = Path("/usr/bin/python3")
pytestmark = pytest.mark.skipif(not (DEBIAN.is_file() and shutil.which("make")), reason="needs Debian's python3, make")


def debian_stdlib() -> Path:
    return Path(subprocess.run([str(DEBIAN), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())


def make_venv(venv: Path, lock: Path, *, wrap: list[str] = ()) -> subprocess.CompletedProcess:
    command = ["make", "-C", str(ROOT), "--no-print-directory", "venv", f"PYTHON={DEBIAN}", f"VENV={venv}",
               f"LOCK={lock}"]
    return subprocess.run([*wrap, *command], capture_output=True, text=True, timeout=300)


def test_make_venv_installs_into_its_own_environment_never_into_the_externally_managed_python(tmp_path: Path,
                                                                                             ) -> None:
    if not (debian_stdlib() / "EXTERNALLY-MANAGED").is_file():
        pytest.skip(f"{DEBIAN} is not externally managed here")
    refused = subprocess.run([str(DEBIAN), "-m", "pip", "install", "--dry-run", "six"], capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    lock, venv = tmp_path / "small.lock", tmp_path / "venv"
    lock.write_text("six==1.16.0\n")
    done = make_venv(venv, lock)
    assert done.returncode == 0, done.stderr
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys, six; from importlib.metadata import "
                            "version; print(sys.base_prefix, six.__version__, version('vjepa-lab'))"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert found == ["/usr", "1.16.0", __version__]
    assert (venv / "installed.lock").read_text() == lock.read_text()
    again = make_venv(venv, lock)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout
    outside = subprocess.run([str(DEBIAN), "-I", "-c", "import vjepa_core"], capture_output=True, cwd=tmp_path)
    assert outside.returncode != 0  # nothing went into Debian's Python


def test_a_python_without_venv_support_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    ensurepip = debian_stdlib() / "ensurepip"
    if not ensurepip.is_dir() or not shutil.which("unshare"):
        pytest.skip("needs Debian's python3-venv (its ensurepip, to hide) and unshare")
    empty = tmp_path / "empty"
    empty.mkdir()
    lock, venv = tmp_path / "small.lock", tmp_path / "venv"
    lock.write_text("six==1.16.0\n")
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount --bind "{empty}" "{ensurepip}" && exec "$@"', "hide"]
    probe = subprocess.run([*hide, str(DEBIAN), "-m", "venv", str(tmp_path / "probe")], capture_output=True,
                           text=True)
    if "Permission denied" in probe.stderr or "Operation not permitted" in probe.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {probe.stderr.strip()}")
    # What Debian's venv says there, over ten lines.
    assert probe.returncode != 0 and "because ensurepip is not\navailable" in probe.stdout, probe
    done = make_venv(venv, lock, wrap=hide)
    said = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert done.returncode != 0 and len(said) == 1, done.stderr
    assert said[0] == (f"error: {DEBIAN} cannot create a virtual environment (no venv module or no ensurepip): on "
                       "Debian or Ubuntu, apt-get install python3-venv; or set PYTHON to another interpreter")
    assert not venv.exists()  # no half-made environment left to trip the next call
