"""Sphinx configuration: Markdown pages (MyST); the CLI reference written from the typer app by typer's own
docs generator at every build; the option and schema references from the code (`_ext/vjepa_reference.py`).
`make docs` builds it with warnings as errors, offline."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "_ext")]

import typer  # noqa: E402
from typer.cli import get_docs_for_click  # noqa: E402

import vjepa_core  # noqa: E402
from runner.cli import app  # noqa: E402


def write_cli_reference(path: Path) -> None:
    """`runner --help` and every command's, as one Markdown page (generated: not in git)."""
    command = typer.main.get_command(app)
    text = get_docs_for_click(obj=command, ctx=typer.Context(command), name="runner",
                              title="`runner` command line")
    path.write_text(text.strip() + "\n")


write_cli_reference(ROOT / "docs" / "reference" / "cli.md")

project = "vjepa-lab"
author = "vjepa-lab contributors"
copyright = "vjepa-lab contributors, MIT licence"
release = vjepa_core.__version__

extensions = ["myst_parser", "vjepa_reference"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"
smartquotes = False  # option help quotes values literally

html_theme = "furo"
html_title = "vjepa-lab"
html_static_path: list[str] = []
