"""The quality benchmark's bookkeeping: mean ± std per preset, target checks, report tables."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return importlib.import_module("quality")


def record(preset, seed, **values):
    base = {"preset": preset, "seed": seed, "minutes": 5.0, "threads": 1, "steps": 100,
            "images_per_s": 10.0, "dataset": "mnist", "fid": 2.0, "precision": 0.5,
            "recall": 0.4}
    return {**base, **values}


def test_summary_means_spreads_and_targets(quality):
    records = [
        record("a", 0, conditional=True, acc=0.99, worst=0.96, fid=3.0),
        record("a", 1, conditional=True, acc=0.97, worst=0.94, fid=5.0),
        record("a", 1, conditional=True, acc=0.98, worst=0.95, fid=4.0),  # re-run replaces
        record("u", 0, conditional=False, entropy=2.25, min_share=0.06, fid=9.0),
        {"preset": "p", "seed": 0, "minutes": 5.0, "steps": 10, "dataset": "mnist-pairs",
         "conditional": True, "metric": "acc10k_two-digit", "value": 0.91,
         "worst_class_acc": 0.5},
    ]
    summary = quality.summarise(records, floor=0.5)
    a = summary["a@5min"]
    assert a["seeds"] == [0, 1] and a["acc"][0] == pytest.approx(0.985)
    assert a["acc"][1] == pytest.approx(0.00707, abs=1e-4)  # sample std of 0.99, 0.98
    assert a["fid_x_floor"][0] == pytest.approx(7.0)
    assert a["pass"] == {"acc": True, "worst": True, "recall": True, "fid": True}
    u = summary["u@5min"]
    assert u["pass"] == {"entropy": True, "fid": True} and u["fid_x_floor"][0] == 18.0
    assert "p@5min" not in summary
    many = quality.summarise_many(records)
    assert many["p@5min"]["value"] == (0.91, 0.0)
    text = quality.markdown(summary, 0.5, "cmd", {"cpu_model": "cpu", "usable_cores": 2,
                                                  "torch": "t", "threads": 1,
                                                  "ganforge_commit": "c"})
    text += quality.markdown_many(many)
    assert "| a@5min | 2 |" in text and "acc:yes" in text and "| p@5min | 1 |" in text
