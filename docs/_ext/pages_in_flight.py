"""Pages that other work is writing (`IN_FLIGHT`), linked and listed in the tables of contents before they land.

While such a page is missing, a Markdown link to it reads as its plain text and its line in a toctree is left
out, so the site still builds with warnings as errors; once the page exists both work as written. When every
page below exists this extension changes nothing and can go. Links to any other missing page still fail.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

IN_FLIGHT = {"guides/engines", "guides/models", "guides/verdicts", "benchmarks/default-study"}
LINK = re.compile(r"\[([^\]]+)\]\(([\w./-]+)\.md(#[\w-]+)?\)")
TOCTREE = re.compile(r"^```\{toctree\}.*?^```", re.MULTILINE | re.DOTALL)


def _missing(app: Sphinx, docname: str, target: str) -> bool:
    name = posixpath.normpath(posixpath.join(posixpath.dirname(docname), target))
    page = Path(app.srcdir) / f"{name}.md"
    if name not in IN_FLIGHT or page.exists():
        return False
    app.env.note_dependency(page, docname=docname)  # a missing dependency re-reads this page until it lands
    return True


def _skip_missing(app: Sphinx, docname: str, source: list[str]) -> None:
    def toctree(block: re.Match[str]) -> str:
        lines = block.group(0).split("\n")
        return "\n".join(line for line in lines if not _missing(app, docname, line.strip()))

    text = TOCTREE.sub(toctree, source[0])
    source[0] = LINK.sub(lambda m: m.group(1) if _missing(app, docname, m.group(2)) else m.group(0), text)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", _skip_missing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
