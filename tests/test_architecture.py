"""The shape of the code base, checked from its source: the project's modules import one another without a cycle.

A cycle ties two modules into one unit that can be neither read nor tested alone, and it works only while every
import in it happens to run after the names it needs exist. Imports are read with ``ast`` from every project module,
those inside functions and ``TYPE_CHECKING`` blocks included: a deferred import hides a cycle from Python, not from a
reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "comparison", "configs", "data_provider", "distillation", "exp", "layers", "models", "scripts",
            "utils")
TOP_MODULES = ("run_main", "forecast")


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages and its top-level entry points."""
    found = {name: ROOT / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The project modules ``path`` (module ``name``) imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b` names the submodule a.b when there is one, else a name defined in a
            out.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_deferred_and_type_checking_imports():
    """The checker itself: a function-level import and a TYPE_CHECKING import are edges, and a cycle is found."""
    assert "distillation.cli" in import_graph()["distillation.pipeline"]  # the entry point's own import
    tree = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(tree) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_project_modules():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def oversized() -> list[str]:
    """Every project module over MAX_MODULE_LINES lines and every function (method, nested function) over
    MAX_FUNCTION_LINES, from its ``def`` line to its last, docstring included; tests/ are not counted."""
    found = []
    for name, path in sorted(module_files().items()):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}.{node.name} (line {node.lineno}): {length} lines")
    return found


def test_no_module_or_function_outgrows_one_sitting():
    """A module is read in one sitting and a function on a screen or two: past these sizes a part wants its own
    name (split into named steps, as Trainer.fit is)."""
    found = oversized()
    assert not found, "too long: " + "; ".join(found)


# The entry points and the modules that build command lines: the only ones that may read argparse. Below them every
# module takes a config dataclass (RunConfig, PipelineConfig, BenchTarget, GridFlags, ...) built at the entry point.
COMMAND_LINE = ("run_main", "forecast", "utils.cli", "configs.flags", "distillation.cli")


def test_only_the_command_lines_import_argparse():
    files = module_files()
    readers = sorted(name for name, path in files.items()
                     if "argparse" in imported(path, name, set(files) | {"argparse"})
                     and name not in COMMAND_LINE and not name.startswith("scripts"))
    assert not readers, f"below the entry points, these modules import argparse: {', '.join(readers)}"
