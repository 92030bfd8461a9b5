"""Benchmark specs: every key checked before anything trains, and the jobs a spec plans (curve
seeds sharing their run with the budget's result, ``--only``); every spec the repository ships
loads and plans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ganforge.bench.spec import load_spec, plan
from ganforge.errors import ConfigError

SPECS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "specs").glob("*.toml"))
BASE = """bench = "quality"
protocol = "test"
seeds = [0, 1, 2]
[budget]
minutes = 5
curve = [1, 2, 5, 10]
[score]
metrics = ["fid"]
[[run]]
preset = "cgan-digits"
[[run]]
typical = "typical-cgan"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_shipped_spec_loads_and_plans(path, tmp_path):
    spec = load_spec(path, data_root=str(tmp_path))
    jobs = plan(spec)
    assert jobs and all(j.run.name for j in jobs)
    assert str(tmp_path) in " ".join(spec.overrides + [a for r in spec.runs for a in r.set]) \
        or "{data_root}" not in path.read_text()


def test_the_quality_spec_plans_the_curve_seed_once(tmp_path):
    spec = load_spec(write(tmp_path, BASE))
    jobs = [(j.run.name, j.seed, j.budget, j.timed) for j in plan(spec)]
    # seed 0 trains to the curve's end (10 min) and serves as its 5-minute result too
    assert jobs[:3] == [("cgan-digits", 0, {"minutes": 10}, [1, 2, 5]),
                        ("cgan-digits", 1, {"minutes": 5}, [1, 2]),
                        ("cgan-digits", 2, {"minutes": 5}, [1, 2])]
    assert len(jobs) == 6 and jobs[3][0] == "typical-cgan"
    assert [j.run.name for j in plan(spec, only=["typical-cgan"])] == ["typical-cgan"] * 3


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1, 2]", "seeds = [0]\nthreds = 2"), "unknown key 'threds' (did you mean 'threads'?)"),
    (("minutes = 5", "minutes = 5\nsteps = 10"), "exactly one of minutes, steps, epochs"),
    (("curve = [1, 2, 5, 10]", "curv = [1]"), "unknown key 'curv' (did you mean 'curve'?)"),
    (('preset = "cgan-digits"', 'preset = "cgan-digitz"'), "cgan-digitz"),
    (('typical = "typical-cgan"', 'typical = "typical-cgn"'), "did you mean 'typical-cgan'"),
    (('metrics = ["fid"]', 'metrics = ["fdi"]'), "fdi"),
    (('preset = "cgan-digits"', 'preset = "cgan-digits"\nset = ["model.d_widht=3"]'),
     "d_widht"),
    (("[budget]", 'set = ["data.root={data_root}"]\n[budget]'), "pass --data-root"),
    (('bench = "quality"', 'bench = ""'), "needs bench"),
    (("minutes = 5\ncurve = [1, 2, 5, 10]", "steps = 5\ncurve = [1]"), "curve needs a budget in minutes"),
    (("minutes = 5\ncurve = [1, 2, 5, 10]", 'epochs = "preset"'), "a typical loop needs minutes"),
    (('typical = "typical-cgan"', 'preset = "cgan-digits"'), "two runs named 'cgan-digits'"),
])
def test_a_bad_spec_is_refused_in_one_line(tmp_path, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_spec(write(tmp_path, BASE.replace(*change)))
    assert "\n" not in str(err.value)


def test_a_missing_or_broken_file_and_an_unknown_only_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(write(tmp_path, "bench = "))
    with pytest.raises(ConfigError, match="did you mean 'typical-cgan'"):
        plan(load_spec(write(tmp_path, BASE)), only=["typical-cgn"])
