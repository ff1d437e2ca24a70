"""The layout holds the architecture: what may import what, and where strategy names may appear.

- The library (`vjepa_core`) never imports the apps built on it (`runner`, `dashboard`, `demo`).
- Module-level imports form no cycle: every module reads top-down.
- The dashboard's query layer and the warehouse load without torch.
- No module outside `vjepa_core/strategies/` lists strategy names or branches on one: they ask the registry.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from vjepa_core.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vjepa_core", "runner", "dashboard", "demo", "benchmarks")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every project module."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(tree: ast.Module, module: str, *, top_level_only: bool) -> set[str]:
    """Modules `tree` imports (resolved to project modules where `from pkg import sub` names a submodule)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else _relative(module, node.module, node.level)
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return names


def _relative(module: str, name: str, level: int) -> str:
    return ".".join([*module.split(".")[:-level], name])


def test_the_library_never_imports_the_apps() -> None:
    offenders = []
    for module, path in modules().items():
        if not module.startswith("vjepa_core"):
            continue
        tree = ast.parse(path.read_text())
        for name in imported_names(tree, module, top_level_only=False):
            if name.split(".")[0] in ("runner", "dashboard", "demo"):
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_module_level_imports_have_no_cycle() -> None:
    known = modules()
    graph = {module: {name for name in imported_names(ast.parse(path.read_text()), module, top_level_only=True)
                      if name in known and name != module} for module, path in known.items()}
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("module", [*(name for name in modules() if name.startswith("dashboard.queries")),
                                    "dashboard.charts", "dashboard.embeddings", "vjepa_core.store.warehouse",
                                    "vjepa_core.spec"])
def test_readers_load_without_torch(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'peft', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_strategy_names_live_in_the_registry() -> None:
    names = set(STRATEGIES)
    offenders = []
    for module, path in modules().items():
        if module.startswith("vjepa_core.strategies"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            listed = _listed_names(node, names)
            if listed:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {listed}")
    assert offenders == []


def _listed_names(node: ast.AST, names: set[str]) -> list[str]:
    """Strategy names a collection literal lists (two or more), or a comparison branches on."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        hits = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
        return hits if len(hits) >= 2 else []
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        return [e.value for e in operands if isinstance(e, ast.Constant) and e.value in names]
    return []


def test_the_checks_see_what_they_look_for() -> None:
    """The scanners are not vacuous: they flag a list of names, a branch on a name and a cycle."""
    names = set(STRATEGIES)
    listing = ast.parse('FROZEN = ("head", "lora")\nif strategy == "full": pass')
    flagged = [hit for node in ast.walk(listing) for hit in _listed_names(node, names)]
    assert flagged == ["head", "lora", "full"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert "runner.app" in imported_names(ast.parse("def f():\n    from runner.app import app"), "x",
                                          top_level_only=False)
