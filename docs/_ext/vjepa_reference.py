"""Reference tables generated from the code, so that the docs never restate it by hand.

`{vjepa-options} module.Class`: a dataclass's fields (flag, type, default, help, bounds) from their declarations
(`vjepa_core.fields`): run and pretraining specs, execution options, the demo's options. `{vjepa-schema}`: every
warehouse table and column, with the comments of `vjepa_core/store/schema.sql`.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import re
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from vjepa_core.fields import declared, flag_default, flags, shown

SCHEMA = Path(__file__).resolve().parents[2] / "vjepa_core" / "store" / "schema.sql"
COLUMN = re.compile(r"\s+(\w+)\s+([A-Z][A-Z0-9_\[\]]*(?:\(\d+(?:,\s*\d+)?\))?)[^-]*(?:--\s*(.*))?")  # name TYPE -- note


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return " \\| ".join(map(str, typing.get_args(hint)))
    if isinstance(hint, type):
        return hint.__name__
    return re.sub(r"\b(typing|pathlib)\.|\bNoneType\b", lambda m: "None" if m.group() == "NoneType" else "", str(hint))


def _bounds(option: Any) -> str:
    parts = [f"{words} {value:g}" for words, value in (
        (">=", option.at_least), (">", option.above), ("<=", option.at_most), ("<", option.below)) if value is not None]
    return ", ".join(parts)


class _Table(SphinxDirective, abc.ABC):
    """Renders a Markdown pipe table built by `rows()`."""

    @abc.abstractmethod
    def rows(self) -> tuple[list[str], list[list[str]]]:
        """(header, body rows) of the table."""

    def run(self) -> list[nodes.Node]:
        header, body = self.rows()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="generated"), self.content_offset, container)
        return container.children


class OptionsTable(_Table):
    required_arguments = 1

    def rows(self) -> tuple[list[str], list[list[str]]]:
        module, _, name = self.arguments[0].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        hints = typing.get_type_hints(cls)
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        body = [[_flags(field, option), _type_name(hints[field]), _default(defaults[field], option), option.help,
                 _bounds(option)] for field, option in declared(cls).items()]
        return ["flag", "type", "default", "meaning", "bounds"], body


def _flags(field: str, option: Any) -> str:
    if not option.on_cli:
        return f"`{field}` (no flag: set in code)"
    return ", ".join(f"`{name}`" for name in flags(field, option))


def _default(default: Any, option: Any) -> str:
    if option.on_cli and option.picked:
        return option.picked
    return f"`{shown(flag_default(default, option) if option.on_cli else default)}`"


class SchemaTable(_Table):
    def rows(self) -> tuple[list[str], list[list[str]]]:
        body, table = [], None
        for line in SCHEMA.read_text().splitlines():
            if match := re.match(r"CREATE TABLE (\w+)", line):
                table = match.group(1)
            elif table and (match := COLUMN.match(line)):
                body.append([f"`{table}`", f"`{match.group(1)}`", match.group(2), match.group(3) or ""])
            elif line.startswith(")"):
                table = None
        return ["table", "column", "type", "what it holds"], body


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("vjepa-options", OptionsTable)
    app.add_directive("vjepa-schema", SchemaTable)
    return {"parallel_read_safe": True, "version": "1"}
