"""The benchmark scripts live in ``benchmarks/`` (scripts, not a package): tests import them with
that folder on ``sys.path``, the way running ``python benchmarks/NAME.py`` would."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def import_benches(monkeypatch: pytest.MonkeyPatch, *names: str) -> SimpleNamespace:
    """The scripts ``names`` (e.g. "speed") as modules, one attribute each."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return SimpleNamespace(**{name: importlib.import_module(name) for name in names})
