"""Layers point one way: the import-linter contracts hold and ``evalkit/`` has no import circle.

Function-level (lazy) imports count in both checks: grimp, import-linter's graph, reads
every ``import`` statement of a module, wherever it sits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: install the dev extra (pip install -e '.[dev]')")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_linter_contracts_hold() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 4
    out = _lint_imports()
    assert f"{len(contracts)} kept, 0 broken" in out, out


def _cycles(graph: grimp.ImportGraph, prefix: str) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    nodes = sorted(m for m in graph.modules if m == prefix or m.startswith(prefix + "."))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m) if n in nodes) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_evalkit_has_no_import_circle() -> None:
    graph = grimp.build_graph("evalkit", cache_dir=None)
    assert _cycles(graph, "evalkit") == []


def test_the_circle_finder_sees_a_lazy_circle() -> None:
    """The check itself works: a circle closed by a function-level import is found."""
    graph = grimp.ImportGraph()
    for m in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(m)
    graph.add_import(importer="pkg.a", imported="pkg.b", line_number=1, line_contents="from pkg import b")
    graph.add_import(importer="pkg.b", imported="pkg.a", line_number=9, line_contents="    from pkg import a")
    graph.add_import(importer="pkg.c", imported="pkg.a", line_number=1, line_contents="from pkg import a")
    assert _cycles(graph, "pkg") == [["pkg.a", "pkg.b"]]


# docs/architecture.md: the one-page picture names every package, and its table of what each
# package imports covers what the code imports.

ARCHITECTURE = ROOT / "docs" / "architecture.md"
_ROW = re.compile(r"^\| `(?P<pkg>[a-z_]+)/` \| (?P<owns>.*) \| (?P<imports>[^|]*) \|$", re.M)


def _subpackages() -> set[str]:
    return {p.parent.name for p in (ROOT / "evalkit").glob("*/__init__.py")}


def _doc_table() -> dict[str, set[str]]:
    rows = {m["pkg"]: set(re.findall(r"`([a-z_]+)/`", m["imports"])) for m in _ROW.finditer(ARCHITECTURE.read_text("utf-8"))}
    assert rows, "docs/architecture.md has no package table"
    return rows


def test_architecture_doc_names_every_package_and_only_real_ones() -> None:
    table = _doc_table()
    assert set(table) == _subpackages(), (
        f"docs/architecture.md's table lists {sorted(table)}; evalkit/ has {sorted(_subpackages())}"
    )
    text = ARCHITECTURE.read_text("utf-8")
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*(?:/|\.py))`", text))
    missing = sorted(n for n in named if not ((ROOT / "evalkit" / n).exists() or (ROOT / n).exists()))
    assert missing == [], f"docs/architecture.md names paths that are not under evalkit/: {missing}"
    words = set(re.findall(r"\b([a-z_]+)/", text))
    assert _subpackages() <= words


def test_architecture_doc_lists_every_package_dependency() -> None:
    graph = grimp.build_graph("evalkit", cache_dir=None)
    actual: dict[str, set[str]] = {}
    for module in graph.modules:
        parts = module.split(".")
        if len(parts) < 3:
            continue  # evalkit itself and top-level modules (__main__) are not packages
        for imported in graph.find_modules_directly_imported_by(module):
            other = imported.split(".")
            if len(other) >= 2 and other[1] in _subpackages() and other[1] != parts[1]:
                actual.setdefault(parts[1], set()).add(other[1])
    table = _doc_table()
    undeclared = {pkg: sorted(deps - table.get(pkg, set())) for pkg, deps in actual.items() if deps - table.get(pkg, set())}
    assert undeclared == {}, f"imports missing from the table in docs/architecture.md: {undeclared}"
    stale = {pkg: sorted(deps - actual.get(pkg, set())) for pkg, deps in table.items() if deps - actual.get(pkg, set())}
    assert stale == {}, f"docs/architecture.md lists imports the code no longer has: {stale}"
