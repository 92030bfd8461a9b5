"""End-to-end training: every preset runs on generated data; resume continues exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api
from ganforge.config import list_presets, resolve
from ganforge.data import KNOWN_SHAPES
from ganforge.reporting import read_jsonl
from tests.conftest import fast_overrides


def preset_on_generated_data(preset: str, steps: int = 2) -> list[str]:
    """Overrides that swap a preset's dataset for generated data of the same shape."""
    cfg = resolve(preset)
    overrides = fast_overrides(steps)
    if cfg.data.name != "toy-2d":
        shape, _ = KNOWN_SHAPES[cfg.data.name]
        size = cfg.data.image_size or shape[1]
        channels = cfg.data.channels or shape[0]
        overrides += ["data.name=synthetic", f"data.image_size={size}",
                      f"data.channels={channels}", "data.limit=64"]
    else:
        overrides += ["data.toy_samples=512"]
    return overrides


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_trains_two_steps(preset, tmp_path):
    run_dir = tmp_path / "run"
    run = api.train(preset, overrides=preset_on_generated_data(preset), out=str(run_dir),
                    log=lambda m: None)
    for name in ("config.json", "model.json", "stats.jsonl", "summary.json", "samples.gif",
                 "losses.png", "final_grid.png"):
        assert (run_dir / name).is_file(), name
    records = read_jsonl(run_dir / "stats.jsonl")
    assert [r["step"] for r in records][:2] == [1, 2]
    assert "Loss/D" in records[-1] and "Loss/G" in records[-1]
    for key, value in records[-1].items():  # every statistic the variant reports
        assert math.isfinite(value), key
    assert json.loads((run_dir / "config.json").read_text())["name"] == preset
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "step_000000000.png", "step_000000001.png", "step_000000002.png"]
    assert Image.open(run_dir / "samples.gif").n_frames == 4  # led by the last grid, then 0..2
    assert run.step == 2
    if run.multi_label:  # conditioned on vectors: one condition row per sample
        x = run.generate(labels=torch.full((2, run.n_classes), 0.5))
    else:
        x = run.generate(labels=[0, 1]) if run.n_classes else run.generate(n=2)
    assert x.shape[0] == 2 and bool(torch.isfinite(x).all())
    if x.dim() == 4:  # images are in [-1, 1]; vectors come back in the data's own units
        assert x.abs().max() <= 1.0


def _weights(run_dir):
    run = api.load_run(run_dir)
    return {k: v.clone() for k, v in run.generator.state_dict().items()}


def test_resume_continues_exactly(tmp_path):
    """Train 6 steps straight vs 3 steps + resume to 6: same stats, bit-identical weights."""
    base = preset_on_generated_data("cdcgan-mnist", steps=6) + [
        "train.deterministic=true", "log.checkpoint_every=3", "loss.real_label_range=[0.7,1.2]"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    api.train("cdcgan-mnist", overrides=base, out=str(straight), log=lambda m: None)
    api.train("cdcgan-mnist", overrides=base + ["train.steps=3"], out=str(split),
              log=lambda m: None)
    api.train(overrides=["train.steps=6"], resume=str(split), log=lambda m: None)
    a, b = read_jsonl(straight / "stats.jsonl"), read_jsonl(split / "stats.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b):
        for key in ("Loss/D", "Loss/G", "Prob/D(x)"):
            assert ra[key] == rb[key], (ra["step"], key)
    wa, wb = _weights(straight), _weights(split)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_time_budget_stops(tmp_path):
    overrides = preset_on_generated_data("gan-mnist", steps=1) + [
        "train.steps=none", "train.minutes=0.01", "log.sample_every=1000",
        "log.checkpoint_every=1000"]
    run = api.train("gan-mnist", overrides=overrides, out=str(tmp_path / "r"), log=lambda m: None)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert 0.6 <= summary["elapsed_s"] < 5 and run.step >= 1


def test_existing_run_folder_is_refused(tmp_path):
    from ganforge.errors import GanforgeError

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("1")
    with pytest.raises(GanforgeError, match="already exists"):
        api.train("gan-mnist", overrides=preset_on_generated_data("gan-mnist"),
                  out=str(tmp_path / "taken"))


def test_mnist_test_split_from_shared_data(mnist_root, tmp_path):
    overrides = fast_overrides(2) + [f'data.root="{mnist_root}"', "data.split=test",
                                     "data.limit=256"]
    run = api.train("cgan-mnist", overrides=overrides, out=str(tmp_path / "m"),
                    log=lambda m: None)
    assert run.n_classes == 10 and run.class_names[:3] == ["0", "1", "2"]
    grid = np.asarray(Image.open(tmp_path / "m" / "final_grid.png"))
    assert grid.ndim == 3 and grid.shape[0] > grid.shape[1] / 2  # 10 class rows, 3 columns


def test_checkpoint_minutes_save_named_states_that_load(tmp_path):
    """log.checkpoint_minutes leaves checkpoints/min_<m> at increasing steps, outside the
    rotation; each loads by path and by name; a resumed run does not save passed ones again."""
    from ganforge.run import checkpoint as ckpt

    overrides = preset_on_generated_data("gan-mnist", steps=1) + [
        "train.steps=none", "train.minutes=0.04", "log.checkpoint_minutes=[0.015,0.03]",
        "log.sample_every=100000", "log.checkpoint_every=100000", "log.keep_checkpoints=1"]
    run_dir = tmp_path / "r"
    run = api.train("gan-mnist", overrides=overrides, out=str(run_dir), log=lambda m: None)
    folder = run_dir / "checkpoints"
    named = {p.stem: json.loads(p.read_text()) for p in folder.glob("min_*.json")}
    assert sorted(named) == ["min_0.015", "min_0.03"]
    steps = [named["min_0.015"]["step"], named["min_0.03"]["step"], run.step]
    assert 0 < steps[0] < steps[1] < steps[2], steps
    assert 0.9 <= named["min_0.015"]["elapsed_s"] < named["min_0.03"]["elapsed_s"]
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == [f"step_{run.step:09d}.json"]
    by_path = api.load_run(run_dir, checkpoint=str(folder / "min_0.015.json"))
    by_name = api.load_run(run_dir, checkpoint="min_0.03")
    assert (by_path.step, by_name.step) == (steps[0], steps[1])
    assert not torch.equal(by_path.generate(n=4, seed=1), by_name.generate(n=4, seed=1))
    saved_at = {p.name: p.stat().st_mtime_ns for p in folder.glob("min_*.json")}
    api.train(overrides=["train.minutes=0.05"], resume=str(run_dir), log=lambda m: None)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("min_*.json")} == saved_at


def test_checkpoint_minutes_are_range_checked():
    from ganforge.errors import ConfigError

    assert resolve("gan-mnist").log.checkpoint_minutes == []
    assert resolve("gan-mnist", overrides=["log.checkpoint_minutes=1,2,5"]).log.checkpoint_minutes \
        == [1.0, 2.0, 5.0]
    for bad in ("[2,1]", "[0,1]", "[1,1]"):
        with pytest.raises(ConfigError, match="checkpoint_minutes"):
            resolve("gan-mnist", overrides=[f"log.checkpoint_minutes={bad}"])
