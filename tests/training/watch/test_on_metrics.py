"""The caller's hook on in-loop metrics (``ganforge.train(..., on_metrics=...)``): it sees every
evaluation, by steps (``eval.every``) and by the training clock (``eval.minutes``), and may end
the run with ``StopRun``, which leaves a run folder that reads and resumes like any other."""

from __future__ import annotations

import json
import math

import pytest

from ganforge import api
from ganforge.config import resolve
from ganforge.errors import ConfigError, StopRun
from ganforge.run.checkpoint import newest_complete
from ganforge.run.folder import RunFolder
from tests.conftest import fast_overrides

TOY = ["eval.metrics=[toy-2d]", "eval.samples=256", "model.g_hidden=[32]",
       "model.d_hidden=[32]", "log.trackers=[]"]


def _overrides(steps: int, *extra: str) -> list[str]:
    return [*fast_overrides(steps=steps, batch=32), *TOY, "log.sample_every=1000",
            "log.checkpoint_every=1000", "log.log_every=5", *extra]


def test_on_metrics_sees_every_evaluation_by_metric_name(tmp_path):
    seen = []
    run = api.train("gan-toy2d", overrides=_overrides(12, "eval.every=4"), out=str(tmp_path / "r"),
                    log=lambda line: None,
                    on_metrics=lambda step, elapsed, values: seen.append((step, elapsed, values)))
    assert [step for step, _, _ in seen] == [4, 8, 12]
    assert [sorted(values) for _, _, values in seen] == [["toy-2d"]] * 3
    assert all(0 < a < b for (_, a, _), (_, b, _) in zip(seen, seen[1:]))
    assert run is not None and run.step == 12


def test_eval_minutes_scores_on_the_training_clock(tmp_path):
    seen = []
    api.train("gan-toy2d", overrides=_overrides(
        10**6, "train.steps=none", "train.minutes=0.03", "eval.minutes=[0.01,0.02]"),
        out=str(tmp_path / "r"), log=lambda line: None,
        on_metrics=lambda step, elapsed, values: seen.append((step, elapsed)))
    assert len(seen) == 2
    (step1, clock1), (step2, clock2) = seen
    assert 0 < step1 < step2 and 0.6 <= clock1 < clock2 and clock2 >= 1.2
    records = [json.loads(line) for line in (tmp_path / "r" / "stats.jsonl").open()]
    assert [r["step"] for r in records if "Metrics/toy-2d" in r][:1] >= [step1]


def test_eval_minutes_must_increase():
    with pytest.raises(ConfigError, match=r"^eval.minutes=\[2.0, 1.0\] must be positive and "
                       r"increasing, e.g. \[1, 2, 3\]$"):
        resolve("gan-toy2d", overrides=["eval.minutes=[2,1]"])
    assert resolve("gan-toy2d", overrides=["eval.minutes=[1]", "eval.best=toy-2d",
                                           "eval.metrics=[toy-2d]"]).eval.best == "toy-2d"


def test_stop_run_keeps_the_step_and_the_run_resumes(tmp_path):
    run_dir = tmp_path / "r"

    def prune(step, elapsed, values):
        if step == 8:
            raise StopRun("pruned: not good enough")

    with pytest.raises(StopRun) as info:
        api.train("gan-toy2d", overrides=_overrides(20, "eval.every=4"), out=str(run_dir),
                  log=lambda line: None, on_metrics=prune)
    assert (info.value.run_dir, info.value.step, info.value.reason) == \
        (run_dir, 8, "pruned: not good enough")
    stopped = json.loads((run_dir / "stopped.json").read_text())
    assert (stopped["step"], stopped["reason"]) == (8, "pruned: not good enough")
    path, step = newest_complete(run_dir)
    assert step == 8
    assert json.loads(path.read_text())["stopped_by"] == "caller: pruned: not good enough"
    folder = RunFolder.read(run_dir)
    assert folder.stopped == stopped and folder.last_step == 8 and not folder.finished
    assert folder.records[-1]["step"] == 8 and math.isfinite(folder.records[-1]["Metrics/toy-2d"])

    run = api.train(resume=str(run_dir), log=lambda line: None)
    assert run is not None and run.step == 20
    assert not (run_dir / "stopped.json").exists() and RunFolder.read(run_dir).finished


def test_scores_and_direction_through_the_api(tmp_path):
    run = api.train("gan-toy2d", overrides=_overrides(4, "eval.final=[toy-2d]",
                                                      "eval.final_samples=256"),
                    out=str(tmp_path / "r"), log=lambda line: None)
    assert run is not None and set(run.scores()) == {"toy-2d"}
    assert (api.higher_is_better("toy-2d"), api.higher_is_better("fid"),
            api.higher_is_better("label-acc")) == (True, False, True)
    with pytest.raises(ConfigError, match=r"^unknown metric 'fdi' \(did you mean 'fid'\?\)"):
        api.higher_is_better("fdi")
