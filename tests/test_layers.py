"""The layering contract: rooms import downwards only, and no module imports one that imports it
back (ARCHITECTURE.md). ``lint-imports`` checks the contracts of ``pyproject.toml``; these tests
run it in the suite, check that it does fail on a planted upward import, and look for module
cycles of any length (function-level and TYPE_CHECKING imports included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the contracts of ``cwd/pyproject.toml`` over the package in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    script = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", script, "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_layering_contracts_are_kept():
    result = lint_imports(REPO, SRC)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph("ganforge", include_external_packages=False)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # Tarjan's strongly connected components: a component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("importer, line", [
    # The run layer reaching up to the facade, and the step reaching up to what watches it.
    ("run/layout.py", "from ganforge.api import train  # planted\n"),
    ("training/step/loop.py", "from ganforge.training.watch import hooks  # planted\n"),
])
def test_a_planted_upward_import_breaks_the_contract(tmp_path, importer, line):
    shutil.copytree(SRC / "ganforge", tmp_path / "src" / "ganforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "ganforge" / importer
    target.write_text(target.read_text() + line)
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
