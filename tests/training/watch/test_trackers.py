"""Experiment trackers: what MLflow, W&B and TensorBoard receive, read back with each library's
own reader; resumes continue the tracker runs; only the main process tracks; missing extras
are one line before the run folder exists."""

from __future__ import annotations

import functools
import glob
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge import api
from ganforge.config import Config, from_dict, resolve
from ganforge.errors import ConfigError
from ganforge.reporting import read_jsonl
from ganforge.training.step.loop import Trainer
from ganforge.training.watch.hooks import Watchers
from ganforge.training.watch.trackers import (TRACKERS, Tracker, TrackerContext, check_trackers,
                                              mlflow_key)
from tests.training.step.test_loop import preset_on_generated_data

PRESET = "cgan-digits"


def _find(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_mlflow = pytest.mark.skipif(not _find("mlflow"), reason="mlflow is not installed "
                                  "(pip install 'ganforge[mlflow]')")
needs_wandb = pytest.mark.skipif(not _find("wandb"), reason="wandb is not installed "
                                 "(pip install 'ganforge[wandb]')")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Trackers that write only under tmp_path and never reach a network."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    for var, name in (("WANDB_DIR", "wandb-dir"), ("WANDB_CACHE_DIR", "wandb-cache"),
                      ("WANDB_CONFIG_DIR", "wandb-config"), ("WANDB_DATA_DIR", "wandb-data"),
                      ("WANDB_ARTIFACT_DIR", "wandb-artifacts")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(var, str(tmp_path / name))
    return tmp_path


def train(out: Path, trackers: str, steps: int = 2, resume: bool = False):
    overrides = preset_on_generated_data(PRESET, steps) + [f"log.trackers=[{trackers}]"]
    if resume:
        return api.train(overrides=[f"train.steps={steps}"], resume=str(out), log=lambda m: None)
    return api.train(PRESET, overrides=overrides, out=str(out), log=lambda m: None)


def stats_of(run_dir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_jsonl(run_dir / "stats.jsonl")}


def grid(run_dir: Path, step: int) -> np.ndarray:
    return np.asarray(Image.open(run_dir / "samples" / f"step_{step:09d}.png").convert("RGB"))


def checkpoint_ids(run_dir: Path) -> dict:
    newest = sorted((run_dir / "checkpoints").glob("step_*.json"))[-1]
    return json.loads(newest.read_text())["trackers"]


# ----------------------------------------------------------------------------------- MLflow

@needs_mlflow
def test_mlflow_gets_the_scalars_grids_and_config(offline):
    from mlflow.tracking import MlflowClient

    run_dir = offline / "runs" / "r1"
    train(run_dir, "mlflow")
    store = offline / "runs" / "mlruns"  # beside the run folder
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(PRESET)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "r1" and run.info.status == "FINISHED"
    assert run.info.run_id == checkpoint_ids(run_dir)["mlflow"]
    stats = stats_of(run_dir)
    for key in ("Loss/D", "Loss/G", "Prob/D(G(z))"):
        history = client.get_metric_history(run.info.run_id, mlflow_key(key))
        assert [(m.step, m.value) for m in history] == [(s, stats[s][key]) for s in (1, 2)]
    assert mlflow_key("Prob/D(G(z))") == "Prob/D_G_z"
    params = run.data.params
    assert params["train.steps"] == "2" and params["log.trackers"] == '["mlflow"]'
    config = json.loads((run_dir / "config.json").read_text())
    saved = Path(client.download_artifacts(run.info.run_id, "config.json", str(offline)))
    assert json.loads(saved.read_text()) == config
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    for step in (0, 1, 2):  # every fixed-noise grid, pixel for pixel
        (name,) = [p for p in images if f"fixed_noise+step+{step}+" in p and p.endswith(".png")]
        path = client.download_artifacts(run.info.run_id, name, str(offline))
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), grid(run_dir, step))
    assert any("Samples~real+step+0+" in p for p in images)
    assert not (offline / "home").exists()  # nothing written outside the test's folders


# -------------------------------------------------------------------------------------- W&B

def wandb_records(path: Path) -> list:
    """The protobuf records of an offline run's ``.wandb`` file (LevelDB-log framing: 32 KiB
    blocks, 7-byte chunk headers; FULL=1, FIRST=2, MIDDLE=3, LAST=4; a 7-byte W&B header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, parts, out = 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's zero-filled tail
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            out.append(record)
    return out


def next_second() -> None:
    """Wait for the wall clock's next second.

    W&B names an offline session's folder by the second it started, so a resumed session started
    within the same second as the first would share its folder, and the newest one could not be
    told apart.
    """
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def wandb_run(wandb_dir: Path, run_id: str) -> tuple[list[dict], dict, Path]:
    """(history rows, config, files folder) of the newest offline run with ``run_id``."""
    (folder,) = sorted(glob.glob(str(wandb_dir / "wandb" / f"offline-run-*-{run_id}")))[-1:]
    records = wandb_records(Path(folder) / f"run-{run_id}.wandb")
    history, config = [], {}
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                            for i in r.history.item})
        elif kind == "config":
            config.update({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                           for i in r.config.update})
    return history, config, Path(folder) / "files"


@needs_wandb
def test_wandb_offline_gets_the_scalars_grids_and_config(offline):
    run_dir = offline / "runs" / "r1"
    train(run_dir, "wandb")
    run_id = checkpoint_ids(run_dir)["wandb"]
    history, config, files = wandb_run(offline / "wandb-dir", run_id)
    stats = stats_of(run_dir)
    scalars = {row["step"]: row for row in history if "Loss/D" in row}
    assert sorted(scalars) == [1, 2]
    for step in (1, 2):
        for key in ("Loss/D", "Loss/G", "Prob/D(G(z))"):
            assert scalars[step][key] == stats[step][key]
    saved = json.loads((run_dir / "config.json").read_text())
    assert {k: v for k, v in config.items() if not k.startswith("_")} == saved
    grids = {row["step"]: row["Samples/fixed_noise/path"] for row in history
             if "Samples/fixed_noise/path" in row}
    assert sorted(grids) == [0, 1, 2]
    for step, rel in grids.items():  # every fixed-noise grid, pixel for pixel
        image = np.asarray(Image.open(files / rel).convert("RGB"))
        assert np.array_equal(image, grid(run_dir, step))
    assert not (offline / "home").exists()


# ------------------------------------------------------------------- both, resumed; rank 0 only

@needs_mlflow
@needs_wandb
def test_a_resumed_run_continues_its_tracker_runs(offline):
    from mlflow.tracking import MlflowClient

    run_dir = offline / "runs" / "r1"
    train(run_dir, "mlflow,wandb")
    first = checkpoint_ids(run_dir)
    next_second()
    train(run_dir, "mlflow,wandb", steps=3, resume=True)
    assert checkpoint_ids(run_dir) == first  # the same MLflow run and W&B run
    client = MlflowClient(tracking_uri=f"sqlite:///{offline / 'runs' / 'mlruns' / 'mlflow.db'}")
    steps = [m.step for m in client.get_metric_history(first["mlflow"], "Loss/D")]
    assert steps == [1, 2, 3]
    assert client.get_run(first["mlflow"]).info.status == "FINISHED"
    history, config, _ = wandb_run(offline / "wandb-dir", first["wandb"])
    assert [row["step"] for row in history if "Loss/D" in row] == [3]
    assert config["train"]["steps"] == 3


@needs_mlflow
@needs_wandb
def test_only_the_main_process_tracks(offline):
    run_dir = offline / "runs" / "r1"
    cfg = resolve(PRESET, overrides=preset_on_generated_data(PRESET) +
                  ["log.trackers=[tensorboard,mlflow,wandb]"])
    trainer = Trainer(cfg, run_dir, log=lambda m: None,
                      hooks=functools.partial(Watchers, main=False))
    assert trainer.hooks.trackers == [] and trainer.hooks.state_dict()["trackers"] == {}
    assert not (run_dir / "tb").exists() and not (offline / "runs" / "mlruns").exists()
    assert list((offline / "wandb-dir").iterdir()) == []


def test_tensorboard_is_the_default_tracker(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert Config().log.trackers == ["tensorboard"]
    run_dir = tmp_path / "r1"
    api.train(PRESET, overrides=preset_on_generated_data(PRESET), out=str(run_dir),
              log=lambda m: None)
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    stats = stats_of(run_dir)
    assert [(e.step, e.value) for e in acc.Scalars("Loss/D")] == [
        (s, pytest.approx(stats[s]["Loss/D"], rel=1e-6)) for s in (1, 2)]
    assert [e.step for e in acc.Images("Samples/fixed_noise")] == [0, 1, 2]
    assert [e.step for e in acc.Images("Samples/real")] == [0]


# --------------------------------------------------------------------------- refusals, config

@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_a_missing_extra_is_one_line_before_the_run_folder(name, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # find_spec then reports it missing
    with pytest.raises(ConfigError, match=rf"pip install 'ganforge\[{name}\]'") as info:
        train(tmp_path / "r1", f"tensorboard,{name}")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "r1").exists()


def test_an_unknown_tracker_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown tracker 'neptune'; valid trackers: mlflow, "
                       "tensorboard, wandb"):
        check_trackers(["tensorboard", "neptune"])
    assert TRACKERS.names() == ["mlflow", "tensorboard", "wandb"]


def test_saved_configs_with_the_old_tensorboard_flag_still_load():
    values = Config().to_dict()
    del values["log"]["trackers"]
    values["log"]["tensorboard"] = False  # a config.json written before log.trackers
    assert from_dict(values).log.trackers == []
    values["log"]["tensorboard"] = True
    assert from_dict(values).log.trackers == ["tensorboard"]
    cfg = resolve(PRESET, overrides=["log.trackers=[mlflow]", "log.tensorboard=true"])
    assert cfg.log.trackers == ["tensorboard", "mlflow"]
    cfg = resolve(PRESET, overrides=["log.trackers=[tensorboard,wandb]", "log.tensorboard=false"])
    assert cfg.log.trackers == ["wandb"]
    with pytest.raises(ConfigError, match="names a tracker twice"):
        resolve(PRESET, overrides=["log.trackers=[wandb,wandb]"])


class Failing(Tracker):
    name = "failing"

    def _scalars(self, step, record):
        raise ConnectionError("tracking server unreachable\nsecond line")

    def _close(self):
        raise AssertionError("a failed tracker is not closed again")


def test_a_failing_tracker_says_so_once_and_stops(tmp_path):
    said = []
    tracker = Failing(TrackerContext(tmp_path, "x", {}, log=said.append))
    tracker.write_scalars(1, {"Loss/D": 1.0})
    tracker.write_scalars(2, {"Loss/D": 1.0})
    tracker.close()
    assert said == ["note: tracker failing stopped logging (tracking server unreachable); the "
                    "run folder keeps every value"]
