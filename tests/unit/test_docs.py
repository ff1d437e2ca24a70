"""The documentation site builds with warnings as errors, and its reference pages are generated from the code:
every command, every option (run, pretraining, execution, demo) and every warehouse table appears without anyone
copying it by hand."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from demo.options import DemoOptions
from runner.cli import app
from vjepa_core.fields import declared, flags
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.spec import ExecOptions, RunSpec

ROOT = Path(__file__).resolve().parents[2]


def text_of(html: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                            str(ROOT / "docs"), str(out)], capture_output=True, text=True, cwd=ROOT)
    assert build.returncode == 0, build.stderr[-3000:]
    return out


def test_cli_reference_lists_every_command_and_its_options(site: Path) -> None:
    page = text_of(site / "reference" / "cli.html")
    commands = list(typer.main.get_command(app).commands)
    assert len(commands) >= 15
    assert [c for c in commands if f"runner {c}" not in page] == []
    assert "--videos-per-class" in page and "--warehouse" in page


def test_options_reference_holds_every_field_with_its_help(site: Path) -> None:
    page = text_of(site / "reference" / "options.html")
    for cls in (RunSpec, PretrainSpec, ExecOptions, DemoOptions):
        for name, option in declared(cls).items():
            assert (flags(name, option)[0] if option.on_cli else name) in page, name
            assert " ".join(option.help.split()[:4]) in html.unescape(page), name


def test_schema_reference_holds_every_table(site: Path) -> None:
    page = text_of(site / "reference" / "warehouse.html")
    tables = re.findall(r"CREATE TABLE (\w+)", (ROOT / "vjepa_core" / "store" / "schema.sql").read_text())
    assert {"runs", "epochs", "class_metrics", "confusion", "predictions"} <= set(tables)
    assert [t for t in tables if f" {t} " not in page] == []
