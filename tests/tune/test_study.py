"""A study from start to end on tiny runs: it completes and writes its outputs (the best preset,
the page, the results store), prunes a bad trial at its first check point and leaves its run
folder consistent, goes on where it stopped, records failed trials, re-verifies the winner,
refuses a study made for something else, and draws its trials with another sampler."""

from __future__ import annotations

import json
import math
import socket
import subprocess

import pytest

optuna = pytest.importorskip("optuna", reason="ganforge tune needs the tune extra: pip install "
                             "'ganforge[tune]'")

from optuna.trial import TrialState  # noqa: E402

from ganforge.bench import Store  # noqa: E402
from ganforge.config import resolve  # noqa: E402
from ganforge.errors import Interrupted  # noqa: E402
from ganforge.run.checkpoint import newest_complete  # noqa: E402
from ganforge.run.folder import RunFolder  # noqa: E402
from ganforge.tune import objective  # noqa: E402
from ganforge.tune.study import RETRY_OF, WORKER  # noqa: E402
from tests.tune.studies import TINY, prepare, run, toy_argv, trials, tune_argv  # noqa: E402

STEPS = ["train.steps=40"]  # the budget of tune_argv's runs, as the best preset keeps it


@pytest.mark.slow
def test_a_study_completes_and_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "study"
    tiny = [o for o in TINY if not o.startswith("log.report_every_s")]  # runs with their report
    argv = tune_argv(out, "--param", "optim.lr_g=loguniform:5e-4:3e-3", "--param",
                     "model.d_dropout=choice:0,0.2", "--verify", "1", trials=3, seeds=2,
                     tiny=tuple(tiny))
    code, stdout, _ = run(capsys, argv)
    assert code == 0
    done = trials(out)
    assert [(t.number, t.state) for t in done] == [(n, TrialState.COMPLETE) for n in range(3)]
    for t in done:
        values = t.user_attrs["values"]
        assert len(values) == 2 and t.value == sum(values) / 2
        for seed in (0, 1):
            run_dir = out / "trials" / f"{t.number:04d}" / f"seed-{seed}"
            folder = RunFolder.read(run_dir)
            assert folder.finished and (run_dir / "report.html").is_file()
            assert folder.config["train"]["seed"] == seed
            assert folder.config["optim"]["lr_g"] == t.params["optim.lr_g"]
            (score,) = folder.evaluations.values()
            assert score["value"] == values[seed] and score["protocol"]["metric"] == "fid"

    # The best settings as a preset: exactly what the best trial trained with.
    best = min(done, key=lambda t: t.value)
    searched = best.user_attrs["overrides"]
    assert searched == [f"optim.lr_g={best.params['optim.lr_g']!r}",
                        f"model.d_dropout={best.params['model.d_dropout']!r}"]
    from_file = resolve(config_file=str(out / "best.toml"))
    assert from_file.to_dict() == resolve("cgan-digits", overrides=[*tiny, *STEPS,
                                                                    *searched]).to_dict()
    assert (from_file.optim.lr_g, from_file.model.d_dropout) == \
        (best.params["optim.lr_g"], best.params["model.d_dropout"])
    assert (out / "best.toml").read_text().splitlines()[1].startswith("# Made by: ganforge tune "
                                                                       "--preset cgan-digits")

    # One record per completed trial, current against the preset as it resolves now.
    store = Store(out / "records.jsonl")
    records = store.records()
    assert [r.name for r in records] == [f"study#{n}" for n in range(3)] and not store.stale()
    for record, t in zip(records, done):
        assert record.bench == "tune"
        assert record.values == {"fid": t.value, "per_seed": t.user_attrs["values"]}
        assert record.protocol == {"minutes": None, "steps": 40, "seeds": [0, 1],
                                   "metric": "fid", "samples": 200, "direction": "minimize",
                                   "study": "study", "trial": t.number}
        assert record.settings_of == {"preset": "cgan-digits",
                                      "overrides": [*tiny, *t.user_attrs["overrides"]]}

    # --verify: the winner and the base preset on a fresh seed, in one table, also on the page.
    verified = optuna.load_study(study_name="study", storage=f"sqlite:///{out / 'study.db'}"
                                 ).user_attrs["verify"]
    assert (verified["trial"], verified["seeds"]) == (best.number, [2])
    (winner,), (base,) = verified["best"], verified["base"]
    table = (f"fid (lower is better) over 1 fresh seeds (2), 40 steps a run:\n"
             f"  {'settings':28s} {'mean ± std':18s} per seed\n"
             f"  {f'best (trial {best.number})':28s} {f'{winner:.4g} ± 0':18s} {winner:.4g}\n"
             f"  {'base cgan-digits':28s} {f'{base:.4g} ± 0':18s} {base:.4g}")
    assert table in stdout
    for arm in (f"trial-{best.number:04d}", "base"):
        assert RunFolder.read(out / "verify" / arm / "seed-2").finished
    page = (out / "study.html").read_text()
    assert "<h2>Re-verified</h2>" in page and "Parameter importance" in page
    assert page.count("<img src=\"data:image/png;base64,") == 2
    assert all(f"<tr class=\"COMPLETE\"><td>{n}</td>" in page for n in range(3))


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_pruning_stops_a_bad_learning_rate_at_its_first_check_point(tmp_path, capsys, pruner):
    out = tmp_path / "study"
    argv = tune_argv(out, "--param", "optim.lr_g=loguniform:1e-7:1e-2", "--pruner", pruner,
                     "--startup-trials", "1", seeds=2)
    study = prepare(argv)
    study.enqueue_trial({"optim.lr_g": 2e-3})  # learns: FID falls
    study.enqueue_trial({"optim.lr_g": 1e-7})  # G stands still: FID stays high
    code, stdout, _ = run(capsys, argv)
    assert code == 0
    good, bad = trials(out)
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.PRUNED)
    assert sorted(good.intermediate_values) == [1, 2, 3, 4, 5, 6]  # 3 check points x 2 seeds
    assert list(bad.intermediate_values) == [1]
    value = bad.intermediate_values[1]
    assert value > good.intermediate_values[1]
    reason = f"pruned by the study at check point 1/4 of seed 0 (step 10, fid {value:.4g})"
    assert bad.user_attrs["reason"] == reason
    assert f"trial 1: pruned: {reason}  optim.lr_g=1e-07\n" in stdout

    # Its run folder: saved at the check point, marked stopped, resumable; no second seed.
    run_dir = out / "trials" / "0001" / "seed-0"
    assert json.loads((run_dir / "stopped.json").read_text())["reason"] == reason
    path, step = newest_complete(run_dir)
    assert step == 10 and json.loads(path.read_text())["stopped_by"] == f"caller: {reason}"
    folder = RunFolder.read(run_dir)
    assert folder.last_step == 10 and folder.records[-1]["Metrics/fid"] == value
    assert folder.summary is None and folder.stopped["step"] == 10
    assert not (out / "trials" / "0001" / "seed-1").exists()
    assert [r.name for r in Store(out / "records.jsonl").records()] == ["study#0"]


def test_the_same_command_again_adds_trials_without_repeating(tmp_path, capsys):
    out = tmp_path / "study"
    assert run(capsys, toy_argv(out, trials=2))[0] == 0
    before = [(t.number, t.datetime_start, t.params, t.value) for t in trials(out)]
    assert [n for n, *_ in before] == [0, 1]
    assert run(capsys, toy_argv(out, trials=3))[0] == 0
    after = trials(out)
    assert [(t.number, t.datetime_start, t.params, t.value) for t in after[:2]] == before
    assert [t.number for t in after] == [0, 1, 2] and after[2].state == TrialState.COMPLETE
    code, stdout, _ = run(capsys, toy_argv(out, trials=3))
    assert code == 0 and stdout.startswith("study 'study' in sqlite:///") and \
        ": 3 of 3 trials;" in stdout.splitlines()[0]
    assert [t.number for t in trials(out)] == [0, 1, 2]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002"]
    assert [r.name for r in Store(out / "records.jsonl").records()] == \
        ["study#0", "study#1", "study#2"]


def test_failed_trials_are_recorded_with_their_reason_and_the_study_goes_on(tmp_path, capsys):
    out = tmp_path / "study"
    argv = tune_argv(out, "--param", "model.d_norm=choice:none,batch", "--param",
                     "loss.r1_gamma=choice:0,0.1", "--param", "optim.lr_g=choice:0.0002,1e30",
                     "--pruner", "none", trials=3, steps=20)
    study = prepare(argv)
    for values in (("batch", 0.1, 0.0002), ("none", 0.0, 1e30), ("none", 0.0, 0.0002)):
        study.enqueue_trial(dict(zip(("model.d_norm", "loss.r1_gamma", "optim.lr_g"), values)))
    code, stdout, _ = run(capsys, argv)
    assert code == 0
    refused, diverged, good = trials(out)
    assert [t.state for t in (refused, diverged, good)] == \
        [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    with pytest.raises(Exception) as config_says:
        resolve("cgan-digits", overrides=["model.d_norm=batch", "loss.r1_gamma=0.1"])
    assert refused.user_attrs["reason"] == str(config_says.value)
    assert diverged.user_attrs["reason"].startswith("non-finite Loss/")
    assert diverged.user_attrs["reason"].endswith("lower optim.lr_g/optim.lr_d or set "
                                                  "train.on_nonfinite=rollback")
    assert f"trial 0: failed: {config_says.value}  model.d_norm=batch" in stdout
    assert resolve(config_file=str(out / "best.toml")).optim.lr_g == 0.0002
    assert '<tr class="FAIL"><td>1</td>' in (out / "study.html").read_text()


def test_a_study_made_for_something_else_is_refused(tmp_path, capsys):
    out = tmp_path / "study"
    prepare(toy_argv(out))
    code, _, err = run(capsys, toy_argv(out, "--direction", "minimize"))
    assert (code, err) == (2, f"ganforge: error: study 'study' in sqlite:///{out / 'study.db'} "
                              "was made for direction maximize, not direction minimize; give "
                              "another --out (or --study-name), or the study's own settings\n")
    argv = toy_argv(out)
    argv[argv.index("--seeds") + 1] = "2"
    code, _, err = run(capsys, argv)
    assert code == 2 and "was made for seeds 1, not seeds 2;" in err


def test_a_trial_whose_worker_died_is_run_again_in_its_slot(tmp_path, capsys):
    out = tmp_path / "study"
    argv = toy_argv(out, trials=2)
    study = prepare(argv)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process of this machine that no longer runs
    orphan = study.ask()
    orphan.suggest_float("optim.lr_g", 1e-4, 2e-3, log=True)
    orphan.set_user_attr(WORKER, f"{socket.gethostname()}:{gone.pid}")
    assert run(capsys, argv)[0] == 0
    dead, again, new = trials(out)
    assert (dead.state, again.state, new.state) == \
        (TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE)
    assert again.system_attrs[RETRY_OF] == 0 and again.params == dead.params
    assert "its worker stopped; run again as trial 1" in (out / "study.html").read_text()


def test_an_interrupted_trial_is_queued_again(tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    argv = toy_argv(out, trials=2)

    def interrupted(*args, **kwargs):
        raise Interrupted("stopped by SIGINT after step 3", 130)

    monkeypatch.setattr(objective.api, "train", interrupted)
    code, _, err = run(capsys, argv)
    assert (code, err) == (130, "ganforge: tune interrupted; the trial it ran is queued again, "
                                "and the same command goes on with the study\n")
    first, queued = trials(out)
    assert (first.state, first.user_attrs["reason"]) == \
        (TrialState.FAIL, "interrupted; its values are queued again")
    assert (queued.state, queued.system_attrs[RETRY_OF], queued.params) == \
        (TrialState.WAITING, 0, first.params)
    monkeypatch.undo()
    assert run(capsys, argv)[0] == 0
    assert [(t.number, t.state) for t in trials(out)] == [
        (0, TrialState.FAIL), (1, TrialState.COMPLETE), (2, TrialState.COMPLETE)]
    assert math.isfinite(trials(out)[1].value)


def test_a_time_budget_is_checked_at_its_quarters(tmp_path, capsys):
    out = tmp_path / "study"
    argv = toy_argv(out, trials=1)
    argv[argv.index("--steps-per-trial"):argv.index("--steps-per-trial") + 2] = \
        ["--minutes-per-trial", "0.04"]
    assert run(capsys, argv)[0] == 0
    (trial,) = trials(out)
    assert trial.state == TrialState.COMPLETE and sorted(trial.intermediate_values) == [1, 2, 3]
    folder = RunFolder.read(out / "trials" / "0000" / "seed-0")
    assert folder.config["train"]["minutes"] == 0.04 and folder.config["train"]["steps"] is None
    assert folder.config["eval"]["minutes"] == [0.01, 0.02, 0.03]
    assert folder.summary["elapsed_s"] >= 0.04 * 60


def test_a_random_sampler_draws_the_trials(tmp_path, capsys):
    out = tmp_path / "study"
    assert run(capsys, toy_argv(out, "--sampler", "random", trials=2))[0] == 0
    assert [t.state for t in trials(out)] == [TrialState.COMPLETE] * 2
    assert "<tr><td>sampler</td><td>random</td></tr>" in (out / "study.html").read_text()
    assert " --sampler random --trials 2 " in (out / "best.toml").read_text().splitlines()[1]
