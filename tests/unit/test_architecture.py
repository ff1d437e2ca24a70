"""The layout holds the architecture: what may import what, and where strategy names may appear.

Every import counts: at module level, inside functions, under `if TYPE_CHECKING:`.

- Layers, lowest first (`LAYERS`); a module imports its own layer or lower ones, never a higher one:
  1. base: errors, paths, progress, provenance, fields (how a spec's options are declared, checked and hashed),
     and `store.atomic` (temp file + rename, the one file-writing primitive every layer that writes uses; it
     imports errors and `store.liveness` only, so it sits here, below the store, with `store.liveness`, the one
     "is that process gone" rule, which imports psutil only);
  2. strategies: the registry and what each strategy trains (torch only inside functions);
  3. spec: `RunSpec` and `ExecOptions`, which validate strategy names and fields against the registry
     (so the strategies sit below the spec, not beside data and models);
  4. data, models, analysis;
  5. store: the warehouse, claims, checkpoints, the token cache;
  6. training, pretrain, inference, release (a run's checkpoint and warehouse rows -> a folder for the world);
  7. the apps: runner, dashboard, demo. Inside runner, by role: its plumbing (options, output, bulk), then
     orchestration (matrix specs, the driver, executors) and the bench harnesses, then the typer app, then
     the commands (`runner/commands/`, one module per command group), then `runner.cli`, which wires them.
     (`benchmarks/` and `tests/` stand on top of everything.)
  So the library never imports the apps built on it. Every module of the four packages has a layer, and none
  imports `benchmarks` or `tests` (a checkout's folders, not installed).
- No cycle among the project's modules: every module reads top-down.
- The dashboard's query layer and the warehouse load without torch.
- No module outside `vjepa_core/strategies/` lists strategy names or branches on one: they ask the registry.
  A string that names two strategies (a comma-joined default, a help text's list) is a list too.
- Each engine name is written in one string of the packages, its registration (`vjepa_core/inference/engines/`);
  every other list, choice, help text and branch derives from the registry. Docstrings, prose for readers, may
  name engines; the eager engines are named after their precisions (fp32, bf16, fp16), which are not scanned.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

from vjepa_core.inference.engines import ENGINES
from vjepa_core.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vjepa_core", "runner", "dashboard", "demo", "benchmarks")
LAYERS = (
    ("vjepa_core", "vjepa_core.errors", "vjepa_core.paths", "vjepa_core.progress", "vjepa_core.provenance",
     "vjepa_core.fields", "vjepa_core.store.atomic", "vjepa_core.store.liveness"),
    ("vjepa_core.strategies",),
    ("vjepa_core.spec",),
    ("vjepa_core.data", "vjepa_core.models", "vjepa_core.analysis"),
    ("vjepa_core.store",),
    ("vjepa_core.training", "vjepa_core.pretrain", "vjepa_core.inference", "vjepa_core.release"),
    ("runner", "dashboard", "demo"),  # runner's plumbing: options, output, bulk
    ("runner.orchestration", "runner.bench"),
    ("runner.app",),
    ("runner.commands",),
    ("runner.cli", "runner.__main__"),
)
WHOLE_PACKAGE_ONLY = {"vjepa_core"}  # its __init__ (the version), not every module under it


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


def imported_names(tree: ast.Module, module: str) -> set[str]:
    """Modules `tree` imports anywhere (resolved to project modules where `from pkg import sub` names a submodule)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else _relative(module, node.module, node.level)
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return names


def _relative(module: str, name: str, level: int) -> str:
    return ".".join([*module.split(".")[:-level], name])


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the longest prefix naming `module` (a package names its modules), else None."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix not in WHOLE_PACKAGE_ONLY
            if (module == prefix or inside) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def layer_violations(imports: dict[str, set[str]]) -> list[str]:
    """`module (layer) imports name (higher layer)` for every import that reaches up."""
    found = []
    for module, names in sorted(imports.items()):
        own = layer_of(module)
        for name in sorted(names):
            other = layer_of(name)
            if own is not None and other is not None and other > own:
                found.append(f"{module} (layer {own + 1}) imports {name} (layer {other + 1})")
    return found


@functools.cache
def all_imports() -> dict[str, set[str]]:
    """Every project module -> every name it imports, anywhere in the file (read once per session)."""
    return {module: imported_names(ast.parse(path.read_text()), module)
            for module, path in modules().items()}


def test_every_library_and_app_module_has_a_layer() -> None:
    assert [m for m in modules() if not m.startswith("benchmarks") and layer_of(m) is None] == []
    assert layer_of("vjepa_core.new_module") is None and layer_of("vjepa_core.store.atomic") == 0


def test_no_module_imports_a_higher_layer() -> None:
    assert layer_violations(all_imports()) == []


def test_installed_packages_never_import_the_checkout_only_folders() -> None:
    """`benchmarks` and `tests` are not installed: nothing in the four packages may need them."""
    offenders = [f"{module} imports {name}" for module, names in all_imports().items()
                 if layer_of(module) is not None for name in names if name.split(".")[0] in ("benchmarks", "tests")]
    assert offenders == []


def test_imports_have_no_cycle() -> None:
    """Imports inside functions count: a cycle hidden in a function is still a cycle for a reader."""
    known = modules()
    graph = {module: {name for name in names if name in known and name != module}
             for module, names in all_imports().items()}
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


READERS = ("dashboard.queries", "dashboard.charts", "dashboard.embeddings", "vjepa_core.store.warehouse",
           "vjepa_core.spec", "vjepa_core.inference.engines")  # the last: the engine registry, read by --help
IMPORT_IN_TURN = """
import importlib, json, sys
heavy = ("torch", "peft", "transformers")
for module in sys.argv[1:]:
    importlib.import_module(module)
    print(json.dumps([module, sorted(m for m in heavy if m in sys.modules)]))
"""


def test_readers_load_without_torch() -> None:
    """In one fresh process, each reader imported in turn: none brings torch, peft or transformers with it."""
    readers = [*(name for name in modules() if name.startswith("dashboard.queries.")), *READERS]
    out = subprocess.run([sys.executable, "-c", IMPORT_IN_TURN, *readers], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    loaded = [json.loads(line) for line in out.stdout.splitlines()]
    assert [module for module, _ in loaded] == readers
    assert [(module, heavy) for module, heavy in loaded if heavy] == []


def test_strategy_names_live_in_the_registry() -> None:
    names = set(STRATEGIES)
    offenders = []
    for module, path in modules().items():
        if module.startswith("vjepa_core.strategies"):
            continue
        tree = ast.parse(path.read_text())
        skipped = docstrings(tree)
        for node in ast.walk(tree):
            listed = _listed_names(node, names) or _named_in_string(node, names, skipped, at_least=2)
            if listed:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {listed}")
    assert offenders == []


def test_each_engine_name_is_written_once_in_its_registration() -> None:
    names = {name for name, engine in ENGINES.items() if not engine.eager}
    written: dict[str, list[str]] = {name: [] for name in names}
    for path in modules().values():
        tree = ast.parse(path.read_text())
        skipped = docstrings(tree)
        for node in ast.walk(tree):
            for name in _named_in_string(node, names, skipped):
                written[name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert {name: places for name, places in written.items() if len(places) != 1} == {}
    assert all(place.startswith("vjepa_core/inference/engines/") for [place] in written.values())


def _listed_names(node: ast.AST, names: set[str]) -> list[str]:
    """Strategy names a collection literal lists (two or more), or a comparison branches on."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        hits = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
        return hits if len(hits) >= 2 else []
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        return [e.value for e in operands if isinstance(e, ast.Constant) and e.value in names]
    return []


def _named_in_string(node: ast.AST, names: set[str], skipped: set[int], *, at_least: int = 1) -> list[str]:
    """The names a string constant (an f-string's parts too; not a docstring) holds as whole words, when at least
    `at_least` of them: `"head,lora"`, `"--strategies (head, lora)"`, `"ort-int8"`."""
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skipped:
        return []
    hits = sorted(name for name in names if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", node.value))
    return hits if len(hits) >= at_least else []


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions (prose for readers)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_the_checks_see_what_they_look_for() -> None:
    """The scanners are not vacuous: they flag a list of names, a branch on a name and a cycle."""
    names = set(STRATEGIES)
    listing = ast.parse('FROZEN = ("head", "lora")\nif strategy == "full": pass')
    flagged = [hit for node in ast.walk(listing) for hit in _listed_names(node, names)]
    assert flagged == ["head", "lora", "full"]
    strings = ast.parse('"""head, lora: a docstring."""\nDEFAULT = "head,pooler_head"\n'
                        'HELP = f"({x}) full, lora or so"\nONE = "the classifier head"\n'
                        'ENGINE = "openvino-int8x, ort-int8"')
    skipped = docstrings(strings)
    assert [hit for node in ast.walk(strings) for hit in _named_in_string(node, names, skipped, at_least=2)] == [
        "head", "pooler_head", "full", "lora"]
    assert [hit for node in ast.walk(strings) for hit in _named_in_string(node, {"ort-int8", "openvino-int8"},
                                                                         skipped)] == ["ort-int8"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert "runner.app" in imported_names(ast.parse("def f():\n    from runner.app import app"), "x")
    hidden = {"vjepa_core.data.corpus": {"vjepa_core.store.warehouse"}, "vjepa_core.spec": {"vjepa_core.data"},
              "vjepa_core.store.atomic": {"vjepa_core.errors"}, "vjepa_core.models.loading": {"vjepa_core.spec"}}
    assert layer_violations(hidden) == ["vjepa_core.data.corpus (layer 4) imports vjepa_core.store.warehouse (layer 5)",
                                        "vjepa_core.spec (layer 3) imports vjepa_core.data (layer 4)"]
