"""The import graph of cbir/ (module-level and function-level imports): no cycle, every import resolves, packages
import only packages of lower layers (LAYERS, the picture in docs/architecture.md), no private name crosses a
package, and nothing of the product imports benchmarks/ (nor benchmarks/ scripts/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "cbir"

# The package order, lowest first: a package may import the packages of lower layers only (never a package of its
# own layer or above). docs/architecture.md draws this picture.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cbir.images", "cbir.index", "cbir.hub", "cbir.core"),  # decoding, the in-memory index, the Hub, shared values
    ("cbir.embed",),  # backbones, preprocessing, runtimes, colour descriptors
    ("cbir.gallery",),  # galleries on disk, labels, live edits, the demo's location
    ("cbir.similarity",),  # similarity methods, classifiers, pairs, evaluation
    ("cbir.stores",),  # vector stores and the methods as store searches
    ("cbir.search",),  # the engine: a query against a gallery
    ("cbir.ui", "cbir.train", "cbir.cli"),  # the Gradio UI; training; command-line helpers
)


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


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"{package} is in no layer of LAYERS: add it where it belongs")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one package to another that is not strictly below it."""
    bad = []
    for module, deps in graph.items():
        if module == "cbir":
            continue
        for dep in deps:
            a, b = package_of(module), package_of(dep)
            if a != b and b != "cbir" and layer_of(b) >= layer_of(a):
                bad.append(f"{module} -> {dep}")
    return sorted(bad)


def test_upward_imports_are_found():
    assert upward_imports({"cbir.embed.x": {"cbir.search.y"}, "cbir.search.y": {"cbir.embed.x"}}) == [
        "cbir.embed.x -> cbir.search.y"]
    assert upward_imports({"cbir.ui.a": {"cbir.train.b"}}) == ["cbir.ui.a -> cbir.train.b"]  # same layer: no


def test_packages_import_only_lower_layers():
    graph = import_graph()
    assert {package_of(m) for m in graph} - {"cbir"} <= {p for layer in LAYERS for p in layer}
    assert upward_imports(graph) == []


def python_files(*roots: str) -> list[Path]:
    return sorted(p for r in roots for p in ([ROOT / r] if r.endswith(".py") else (ROOT / r).rglob("*.py")))


def top_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every absolute import in `path`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


def test_the_product_does_not_import_benchmarks_and_benchmarks_do_not_import_scripts():
    bad = [f"{p.relative_to(ROOT)}: {m}" for p in python_files("cbir", "scripts", "app.py")
           for m, _ in top_imports(p) if m.split(".")[0] == "benchmarks"]
    bad += [f"{p.relative_to(ROOT)}: {m}" for p in python_files("benchmarks")
            for m, _ in top_imports(p) if m.split(".")[0] == "scripts"]
    assert bad == []


def test_no_private_name_crosses_a_package():
    bad = []
    for p in python_files("cbir", "scripts", "app.py"):
        here = package_of(module_name(p)) if p.is_relative_to(PKG) else str(p.relative_to(ROOT))
        for m, names in top_imports(p):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if m.startswith("cbir") and private and package_of(m) != here:
                bad.append(f"{p.relative_to(ROOT)} imports {private} from {m}")
    assert bad == []
