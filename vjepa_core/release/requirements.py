"""What a released file needs installed, derived from what it imports.

A Space's `requirements.txt` and a model card's `pip install` line are these lists: the distributions that
provide the files' imports (`importlib.metadata.packages_distributions`; the standard library and the folder's
own modules left out; an import guarded by `except ImportError` counts only where its feature is on), plus what
the imported names need at run time without requiring it (`RUNTIME_NEEDS`), each pinned to the version installed
here, the one the release was checked with.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata

# Imported name -> distributions it needs that its own distribution does not require. transformers requires no
# torch and no video library, yet its video models run on torch, its video processors need torchvision
# ("AutoVideoProcessor requires the Torchvision library") and read files with torchcodec, and its
# video-classification pipeline refuses to start without PyAV.
RUNTIME_NEEDS = {"transformers": ("torch", "torchvision", "torchcodec"), "transformers.pipeline": ("av",)}
GUARDS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class Imports:
    """Names a source imports (`numpy`, `os.path`, `transformers.pipeline` for `from transformers import
    pipeline`): always, and only where an `except ImportError` guards them."""

    required: frozenset[str]
    optional: frozenset[str]

    @property
    def modules(self) -> set[str]:
        """The top-level modules of the required names."""
        return top_level(self.required)


def top_level(names: Iterable[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def imports_of(source: str) -> Imports:
    """The absolute imports anywhere in `source` (functions and `try` blocks too)."""
    tree = ast.parse(source)
    guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.Try) and _guards_imports(block)
               for statement in block.body for node in ast.walk(statement)}
    required: set[str] = set()
    optional: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module != "__future__":
            names = {f"{node.module}.{alias.name}" for alias in node.names}
        else:
            continue
        (optional if id(node) in guarded else required).update(names)
    return Imports(frozenset(required), frozenset(optional - required))


def _guards_imports(block: ast.Try) -> bool:
    caught = [handler.type for handler in block.handlers if handler.type is not None]
    names = {node.id for expr in caught for node in ast.walk(expr) if isinstance(node, ast.Name)}
    return bool(names & GUARDS)


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions(imported: Iterable[str], *, local: Iterable[str] = ()) -> list[str]:
    """The installed distributions that provide the `imported` names (the standard library and `local` modules
    skipped), with the `RUNTIME_NEEDS` of those names and their packages, sorted. A module nothing here provides
    is a `LookupError`: the file imports what this environment could not have checked."""
    skipped = set(local) | set(sys.stdlib_module_names)
    wanted = {name for name in imported if name.split(".")[0] not in skipped}
    names: set[str] = set()
    for module in top_level(wanted):
        found = _distributions().get(module)
        if not found:
            raise LookupError(f"no installed distribution provides the module {module!r}")
        names.update(metadata.distribution(name).metadata["Name"].lower() for name in found)
    for name in wanted:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            names.update(RUNTIME_NEEDS.get(".".join(parts[:depth]), ()))
    return sorted(names)


def pinned(names: Iterable[str]) -> list[str]:
    """`name==version` as installed here, a local tag like +cu130 dropped (the registry's build of that version)."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in names]
