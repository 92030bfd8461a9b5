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
