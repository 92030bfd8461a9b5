"""``ganforge bench SPEC`` on tiny budgets: one record per run with the protocol's fields, the
floor, ``--skip-done``, named checkpoints scored at their minutes, an interrupted benchmark
keeping what it finished, and the busy-machine warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganforge.bench import Store, preset_fingerprint
from ganforge.bench import runner
from ganforge.bench.protocol import Protocol
from ganforge.bench.spec import load_spec
from ganforge.cli import main
from ganforge.errors import Interrupted

TINY = """bench = "quality"
protocol = "tiny"
threads = 1
seeds = [0]
set = ["data.name=digits", "train.batch_size=16"]
[budget]
steps = 3
[score]
metrics = ["fid"]
conditional = ["label-acc"]
evaluator = "digits-lenet"
samples = 64
reference = { dataset = "digits", split = "test", n = 200 }
floor = { dataset = "digits", split = "train", n = 64 }
[[run]]
preset = "cgan-digits"
compare_with = "typical-cgan"
[[run]]
typical = "typical-cgan"
"""


@pytest.fixture()
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def bench(spec: Path, tmp_path: Path, *more: str) -> int:
    return main(["bench", str(spec), "--store", str(tmp_path / "s.jsonl"), "--runs",
                 str(tmp_path / "runs"), *more])


def test_a_spec_runs_into_the_store_and_skip_done_goes_on(spec_file, tmp_path, capsys):
    assert bench(spec_file, tmp_path) == 0
    floor, preset, typical = Store(tmp_path / "s.jsonl").records()
    assert floor.protocol["kind"] == "floor" and floor.values["n"] == 64
    assert 0 <= floor.values["acc"] <= 1 and floor.values["fid"] >= 0
    assert preset.name == "cgan-digits" and preset.values["steps"] == 3
    assert preset.protocol["budget_steps"] == 3 and preset.protocol["compare_with"] == "typical-cgan"
    assert preset.protocol["points"] == [{"minutes": None, "checkpoint": "step_000000003"}]
    assert preset.values["final/step"] == 3 and len(preset.values["final/per_class"]) == 10
    assert preset.protocol["reference_n"] == 200 and preset.protocol["n_samples"] == 64
    # the fingerprint is what the run trained with: the preset under the spec's overrides
    assert preset.settings_sha == preset_fingerprint(
        "cgan-digits", ["data.name=digits", "train.batch_size=16"])
    assert preset.command == f"ganforge bench {spec_file}"
    assert typical.settings_sha is None and typical.protocol["dataset"] == "digits"
    assert typical.values["steps"] == 3 and typical.protocol["conditional"] is True
    assert bench(spec_file, tmp_path, "--skip-done") == 0
    assert "2 already in" in capsys.readouterr().out
    assert len(Store(tmp_path / "s.jsonl").records()) == 3


def test_named_checkpoints_are_scored_at_their_minutes(tmp_path):
    path = tmp_path / "curve.toml"
    path.write_text(TINY.replace("steps = 3", "minutes = 0.02\ncurve = [0.005, 0.01, 0.02]")
                    .replace("floor = ", "# floor = ").replace("seeds = [0]", "seeds = [1]"))
    assert main(["bench", str(path), "--only", "cgan-digits", "--store",
                 str(tmp_path / "s.jsonl"), "--runs", str(tmp_path / "runs")]) == 0
    (record,) = Store(tmp_path / "s.jsonl").records()
    points = record.protocol["points"]
    assert [p["minutes"] for p in points] == [0.005, 0.01, 0.02]
    assert [p["checkpoint"] for p in points[:2]] == ["min_0.005", "min_0.01"]
    steps = [record.values[f"{m:g}min/step"] for m in (0.005, 0.01, 0.02)]
    assert steps == sorted(steps) and steps[-1] == record.values["steps"]
    assert all(f"{m:g}min/acc" in record.values for m in (0.005, 0.01, 0.02))


def test_an_interrupted_benchmark_keeps_every_finished_record(spec_file, tmp_path, monkeypatch):
    made = []
    real = Protocol.run_job

    def second_one_stops(self, job):
        if made:
            raise KeyboardInterrupt
        made.append(job)
        return real(self, job)

    monkeypatch.setattr(Protocol, "run_job", second_one_stops)
    with pytest.raises(Interrupted, match="the 2 records it finished are in") as err:
        runner.run_spec(load_spec(spec_file), Store(tmp_path / "s.jsonl"), tmp_path / "runs",
                        "ganforge bench tiny.toml", log=lambda _: None)
    assert err.value.exit_code == 130
    assert [r.name for r in Store(tmp_path / "s.jsonl").records()] == ["floor", "cgan-digits"]


def test_a_busy_machine_is_named_with_its_load():
    assert runner.busy_warning(0.1) is None
    line = runner.busy_warning(1.75)
    assert "load average 1.75" in line and "\n" not in line


def test_dry_run_trains_nothing_and_a_bad_spec_exits_2(spec_file, tmp_path, capsys):
    assert bench(spec_file, tmp_path, "--dry-run") == 0
    assert "cgan-digits seed 0 3 steps" in capsys.readouterr().out
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "runs").exists()
    spec_file.write_text(TINY.replace("threads = 1", "thread = 1"))
    assert bench(spec_file, tmp_path) == 2
    assert "did you mean 'threads'" in capsys.readouterr().err


def test_a_runs_own_reference_is_its_own_and_leaves_the_specs_alone(tmp_path):
    path = tmp_path / "own.toml"
    path.write_text(TINY.replace('compare_with = "typical-cgan"', 'reference = "own"')
                    .replace("floor = ", "# floor = "))
    assert main(["bench", str(path), "--store", str(tmp_path / "s.jsonl"), "--runs",
                 str(tmp_path / "runs")]) == 0
    own, typical = Store(tmp_path / "s.jsonl").records()
    assert own.protocol["reference"] == "the run's own test split"
    assert "reference_pixels_sha256" not in own.protocol
    assert typical.protocol["reference"] == "digits (test, images 0..199)"
    assert typical.protocol["reference_n"] == 200
    assert main(["bench", str(path), "--skip-done", "--store", str(tmp_path / "s.jsonl"),
                 "--runs", str(tmp_path / "runs")]) == 0
    assert len(Store(tmp_path / "s.jsonl").records()) == 2  # both recognised as done
