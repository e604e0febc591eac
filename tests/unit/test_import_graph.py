"""No import circles in the package: the modules' imports (at any depth, inside functions too)
form a graph without cycles, and data flows one way (the lower layers never import the upper)."""

from __future__ import annotations

import ast
from pathlib import Path

import claude_top

PACKAGE = Path(claude_top.__file__).resolve().parent
ROOT = PACKAGE.parent

LAYERS = {
    "claude_top.core": 0,
    "claude_top.receiver": 1,
    "claude_top.ui": 2,
    "claude_top.demo": 2,
    "claude_top.commands": 3,
    "claude_top.cli": 4,
}
"""A module may import modules of its own layer or below, never above."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path) -> set[str]:
    """The package's modules that `name` imports: `from a.b import c` names `a.b.c` when that
    is a module, else `a.b`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer(name: str) -> int | None:
    for prefix, n in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return n
    return None


def test_the_package_has_no_import_cycles():
    assert len(GRAPH) > 40
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_one_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if layer(name) is not None and layer(target) is not None and layer(target) > layer(name)
    )
    assert upward == []
