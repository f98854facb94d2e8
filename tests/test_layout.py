"""The code's layout keeps its rules (docs/development.md, Layout): no import circle between
modules but the stated ones, and no file over 400 lines that does not say why at its top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grammar", "extract", "fuzz")
LONG = 400
DELIBERATE = {("grammar.program", "grammar.render"), ("grammar.program", "grammar.categories")}
"""Import edges allowed to close a circle; the importing module's docstring says why."""


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``packages`` in ``root``."""
    found = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports, at its top or inside a
    function (a lazy import still makes a circle for the reader)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                      for a in node.names}
    return {m for m in found if m in known and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def graph_of(root: Path, packages: tuple[str, ...],
             allowed: set[tuple[str, str]] = frozenset()) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {name: {m for m in imports(name, path, known) if (name, m) not in allowed}
            for name, path in known.items()}


def test_no_import_circle_but_the_stated_ones():
    assert circles(graph_of(ROOT, PACKAGES, DELIBERATE)) == []
    known = modules(ROOT, PACKAGES)
    for importer, imported in DELIBERATE:
        assert imported in imports(importer, known[importer], known)  # still needed
        assert "deliberate import circle" in ast.get_docstring(
            ast.parse(known[importer].read_text(encoding="utf-8"))), importer


def test_a_planted_circle_is_found(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from . import c\n")
    (tmp_path / "pkg" / "c.py").write_text("from .a import x\n")
    assert circles(graph_of(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert circles(graph_of(tmp_path, ("pkg",), {("pkg.c", "pkg.a")})) == []


@pytest.mark.parametrize("path", sorted(p for folder in (*PACKAGES, "bench", "tests")
                                        for p in (ROOT / folder).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_file_says_why_at_its_top(path):
    text = path.read_text(encoding="utf-8")
    if text.count("\n") > LONG:
        assert f"{LONG} lines" in (ast.get_docstring(ast.parse(text)) or ""), \
            f"{path.relative_to(ROOT)} has {text.count(chr(10))} lines and no reason at its top"


@pytest.mark.parametrize("script", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_bench_scripts_import_what_the_packages_hold(script):
    # the benchmarks are run by hand, not in CI: a moved module must not break them unseen
    import importlib

    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"), f"{script.name}: {node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    importlib.import_module(alias.name)
