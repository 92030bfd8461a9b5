"""In-loop metrics: reported in stats, best checkpoint kept, `generate --checkpoint best`."""

from __future__ import annotations

import json

import pytest

from ganforge import api
from ganforge.config import DataConfig
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics.evaluator import train_evaluator
from ganforge.reporting import read_jsonl
from ganforge.metrics.base import HIGHER_IS_BETTER
from ganforge.training.watch.monitor import MetricMonitor
from tests.training.step.test_loop import preset_on_generated_data


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluator") / "synthetic-lenet.safetensors"
    train_evaluator(DataConfig(name="synthetic", limit=600), epochs=1, batch_size=50, seed=0,
                    out_path=str(out), threads=1, log=lambda m: None)
    return out


def test_metrics_every_n_steps_and_best_checkpoint(evaluator, tmp_path):
    overrides = preset_on_generated_data("cdcgan-mnist", steps=4) + [
        "eval.every=2", "eval.metrics=[\"label-acc\",\"fid\"]", "eval.samples=100",
        f'eval.extractor="{evaluator}"', "eval.best=label-acc", "log.log_every=2"]
    run = api.train("cdcgan-mnist", overrides=overrides, out=str(tmp_path / "r"),
                    log=lambda m: None)
    records = {r["step"]: r for r in read_jsonl(tmp_path / "r" / "stats.jsonl")}
    for step in (2, 4):
        assert 0.0 <= records[step]["Metrics/label-acc"] <= 1.0
        assert records[step]["Metrics/fid"] >= 0.0
    best = json.loads((tmp_path / "r" / "checkpoints" / "best.json").read_text())
    history = best["monitor"]["history"]
    accs = {h["step"]: h["label-acc"]["value"] for h in history}
    assert best["step"] == max(accs, key=lambda s: (accs[s], -s))  # first step of the maximum
    assert history[0]["fid"]["name"] == "fid100_synthetic-lenet"
    best_run = api.load_run(tmp_path / "r", checkpoint="best")
    assert best_run.step == best["step"] and run.step == 4


def test_best_requires_metric_in_list():
    from ganforge.config import resolve

    with pytest.raises(ConfigError, match="eval.best='fid' is not in eval.metrics"):
        resolve("cgan-mnist", overrides=["eval.every=10", "eval.metrics=label-acc",
                                         "eval.best=fid"])
    with pytest.raises(ConfigError, match="eval.best needs in-loop metrics"):
        resolve("cgan-mnist", overrides=["eval.best=fid"])


def test_missing_extractor_fails_before_training(tmp_path):
    overrides = preset_on_generated_data("cdcgan-mnist") + [
        "eval.every=1", f'eval.extractor="{tmp_path / "nope.safetensors"}"']
    with pytest.raises(GanforgeError):
        api.train("cdcgan-mnist", overrides=overrides, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_no_best_checkpoint_without_eval(tmp_path):
    api.train("gan-mnist", overrides=preset_on_generated_data("gan-mnist"),
              out=str(tmp_path / "r"), log=lambda m: None)
    with pytest.raises(GanforgeError, match="has no best checkpoint"):
        api.load_run(tmp_path / "r", checkpoint="best")


def test_direction_of_improvement():
    monitor = MetricMonitor.__new__(MetricMonitor)
    monitor.cfg = type("E", (), {"best": "fid"})()
    monitor.best_value = monitor.best_step = None
    assert monitor.improved({"Metrics/fid": 10.0}, 1)
    assert not monitor.improved({"Metrics/fid": 12.0}, 2)
    assert monitor.improved({"Metrics/fid": 9.0}, 3) and monitor.best_step == 3
    assert "label-acc" in HIGHER_IS_BETTER and "fid" not in HIGHER_IS_BETTER


def test_final_metrics_land_in_metrics_json_and_the_closing_summary(evaluator, tmp_path):
    """eval.final scores the final G as `ganforge evaluate RUN` does, writes metrics.json, and
    the run ends with those numbers and where the report is."""
    from ganforge.cli import closing_summary
    from ganforge.metrics.evaluate import evaluate

    overrides = preset_on_generated_data("cdcgan-mnist", steps=3) + [
        'eval.final=["label-acc","fid"]', "eval.final_samples=60", "data.split=test",
        f'eval.extractor="{evaluator}"', "log.report_every_s=0"]
    lines: list[str] = []
    api.train("cdcgan-mnist", overrides=overrides, out=str(tmp_path / "r"), log=lines.append)
    saved = {r["name"]: r for r in json.loads((tmp_path / "r" / "metrics.json").read_text())[
        "results"]}
    assert set(saved) == {"acc60_synthetic-lenet", "fid60_synthetic-lenet"}
    assert any(line.startswith("acc60_synthetic-lenet") for line in lines)  # printed at the end
    # The same numbers as `ganforge evaluate RUN` on the same checkpoint, samples and seed.
    again = {r.name: r.value for r in evaluate(tmp_path / "r", ["label-acc", "fid"],
                                               str(evaluator), n_fake=60, log=lambda m: None)}
    assert again == {name: r["value"] for name, r in saved.items()}
    summary = closing_summary(tmp_path / "r")
    assert f"report:     {tmp_path / 'r' / 'report.html'}" in summary
    assert "metric:     acc60_synthetic-lenet = " in summary and "ganforge generate" in summary
    per_class = saved["acc60_synthetic-lenet"]["details"]["per_class"]
    names = saved["acc60_synthetic-lenet"]["details"]["class_names"]
    assert f"per class: {names[0]} {per_class[0]:.2f} · {names[1]} {per_class[1]:.2f}" in summary
    assert "60 samples vs 60 real (synthetic test split), synthetic-lenet recipe v2" in summary
    html = (tmp_path / "r" / "report.html").read_text()
    assert "per class: " in html and "60 samples vs 60 real (synthetic test split)" in html


def test_unknown_final_metric_stops_the_run_before_its_folder(tmp_path):
    overrides = preset_on_generated_data("cdcgan-mnist", steps=2) + ['eval.final=["nope"]']
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        api.train("cdcgan-mnist", overrides=overrides, out=str(tmp_path / "r"),
                  log=lambda m: None)
    assert not (tmp_path / "r").exists()


def test_missing_final_evaluator_names_both_fixes_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))  # no user evaluators
    overrides = preset_on_generated_data("cdcgan-mnist", steps=2) + ['eval.final=["fid"]']
    with pytest.raises(GanforgeError) as info:
        api.train("cdcgan-mnist", overrides=overrides, out=str(tmp_path / "r"),
                  log=lambda m: None)
    message = str(info.value)
    assert "\n" not in message and "ganforge train-evaluator --dataset synthetic" in message
    assert "--set eval.final=[]" in message
    assert not (tmp_path / "r").exists()
