"""The import graph of cbir/ (module-level and function-level imports) has no cycle, and every import resolves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "cbir"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every cbir module `path` imports, at any depth of the file (functions included)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `from cbir.x import f` -> cbir.x; `import cbir.x.y` -> cbir.x.y
                name = name.rpartition(".")[0]
            if name and name != me and name.startswith("cbir"):
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PKG.rglob("*.py"))
    modules = {module_name(p) for p in files}
    # importing a package's module runs the package's __init__ too: an edge to the parent package
    graph = {module_name(p): imported_modules(p, modules) for p in files}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None; iterative DFS with colours."""
    colour = {m: 0 for m in graph}
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif colour.get(child) == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_find_cycle_detects_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_are_edges(tmp_path):
    f = tmp_path / "cbir" / "x.py"
    f.parent.mkdir()
    f.write_text("def g():\n    from cbir.y import h\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert imported_modules(f, {"cbir.x", "cbir.y"}) == {"cbir.y"}
    finally:
        ROOT = old


def test_cbir_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_cbir_imports_resolve(path):
    """Every `cbir.*` name imported by a cbir module is a module of the package (no import of a moved module)."""
    modules = {module_name(p) for p in PKG.rglob("*.py")}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cbir") and not node.level:
            assert node.module in modules, f"{path.name} imports {node.module}, which does not exist"
