"""Benchmark scripts use ganforge's public API only, as ``ganforge.bench`` does (its import
contract in ``pyproject.toml``; ``benchmarks/`` is a folder of scripts, out of import-linter's
reach, so this test reads their imports).

:data:`LEGACY` names the scripts written before the public API could do their job, each with
what it still reaches for. The list only shrinks: a new script, or a new internal import in a
listed one, fails here; a listed script that no longer needs the internals fails too, until it
leaves the list."""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# The public API: the facade and what a user's script may import (ARCHITECTURE.md).
PUBLIC = {"ganforge", "ganforge.api", "ganforge.bench", "ganforge.config", "ganforge.errors",
          "ganforge.version", "ganforge.tune"}
LEGACY = {
    # Timing of ganforge's own loop apart from its setup, peak memory: the Trainer itself.
    "speed.py", "throughput.py",
    # The earlier protocols' scorers and report writers (their records are in the store; the
    # specs in benchmarks/specs run them through ganforge bench now).
    "quality.py", "quality_score.py", "quality_report.py", "parzen_mnist.py",
    "kmnist_acgan.py", "kmnist_report.py", "metrics_speed.py",
    # Building the shipped evaluators, reading samples with two evaluators, the continuous
    # conditions' and the faces' protocols: the metrics room's insides.
    "ship_digits_evaluator.py", "report.py", "evaluator_mnist.py", "evaluator_reading.py",
    "condition_features.py", "condition_ring.py", "faces.py", "faces_report.py",
}


def internal_imports(path: Path) -> set[str]:
    """The ganforge modules outside :data:`PUBLIC` that ``path`` imports (anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                     if node.module == "ganforge"]
        for name in names:
            top = ".".join(name.split(".")[:2])
            if top.startswith("ganforge") and top not in PUBLIC and name != "ganforge":
                found.add(name)
    return found


def test_benchmark_scripts_import_only_the_public_api():
    offenders = {p.name: sorted(internal_imports(p)) for p in sorted(BENCHMARKS.glob("*.py"))}
    offenders = {k: v for k, v in offenders.items() if v}
    new = {k: v for k, v in offenders.items() if k not in LEGACY}
    assert not new, f"benchmark scripts importing ganforge internals: {new}; use ganforge.api"
    done = sorted(LEGACY - set(offenders))
    assert not done, f"{done} use the public API only now: remove them from LEGACY"


def test_the_checker_sees_every_form_of_import(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import ganforge.models\nfrom ganforge import fileio, api\n"
                      "from ganforge.bench import Store\ndef f():\n"
                      "    from ganforge.run.checkpoint import list_checkpoints\n")
    assert internal_imports(script) == {"ganforge.models", "ganforge.fileio",
                                        "ganforge.run.checkpoint"}
