"""``--sampler grid``: every combination of the choices trained once, none again on a resume, a
retried trial kept on its own combination, and every refusal one line before any trial."""

from __future__ import annotations

import itertools

import pytest

optuna = pytest.importorskip("optuna", reason="ganforge tune needs the tune extra: pip install "
                             "'ganforge[tune]'")

from optuna.trial import TrialState  # noqa: E402

from ganforge.bench import Store  # noqa: E402
from ganforge.errors import Interrupted  # noqa: E402
from ganforge.run.folder import RunFolder  # noqa: E402
from ganforge.tune import objective  # noqa: E402
from ganforge.tune.study import RETRY_OF  # noqa: E402
from tests.tune.studies import run, trials, tune_argv  # noqa: E402

# A 2 x 2 grid of the embedded digits' D, 5 steps a run, 64 samples a score.
GRID = ["--sampler", "grid", "--param", "model.d_dropout=choice:0,0.2", "--param",
        "model.d_norm=choice:none,layer"]
COMBINATIONS = set(itertools.product((0.0, 0.2), ("none", "layer")))


def grid_argv(out, *extra: str) -> list[str]:
    """The grid study in ``out``: --trials left out, so the grid's size."""
    argv = tune_argv(out, *GRID, *extra, steps=5, samples=64)
    at = argv.index("--trials")
    return argv[:at] + argv[at + 2:]


def ran(done: list[optuna.trial.FrozenTrial]) -> list[tuple[float, str]]:
    """The combination of each completed trial."""
    return [(t.params["model.d_dropout"], t.params["model.d_norm"]) for t in done
            if t.state == TrialState.COMPLETE]


def test_a_grid_trains_each_combination_once_and_a_resume_adds_none(tmp_path, capsys):
    out = tmp_path / "study"
    code, stdout, _ = run(capsys, grid_argv(out))
    assert code == 0 and ": 0 of 4 trials;" in stdout.splitlines()[0]
    done = trials(out)
    assert [t.number for t in done] == [0, 1, 2, 3]
    assert sorted(ran(done)) == sorted(COMBINATIONS)
    # The default pruner of a grid is none: no check points spend the runs' budget.
    assert all(not t.intermediate_values for t in done)
    config = RunFolder.read(out / "trials" / "0000" / "seed-0").config
    assert (config["eval"]["every"], config["eval"]["minutes"]) == (0, [])
    assert [r.name for r in Store(out / "records.jsonl").records()] == \
        [f"study#{n}" for n in range(4)]
    made_by = (out / "best.toml").read_text().splitlines()[1]
    assert " --sampler grid --trials 4 " in made_by and " --pruner none " in made_by

    # The same command again: the grid is done, nothing runs.
    code, stdout, _ = run(capsys, grid_argv(out))
    assert code == 0 and ": 4 of 4 trials;" in stdout.splitlines()[0]
    assert [(t.number, t.datetime_start) for t in trials(out)] == \
        [(t.number, t.datetime_start) for t in done]
    assert len(Store(out / "records.jsonl").records()) == 4

    # Other choices are another grid: refused, the study untouched.
    argv = grid_argv(out)
    argv[argv.index("model.d_dropout=choice:0,0.2")] = "model.d_dropout=choice:0,0.2,0.4"
    code, _, err = run(capsys, argv)
    assert (code, err) == (2, f"ganforge: error: study 'study' in sqlite:///{out / 'study.db'} "
                              "was made for grid model.d_dropout=0.0,0.2; model.d_norm=none,"
                              "layer, not grid model.d_dropout=0.0,0.2,0.4; model.d_norm=none,"
                              "layer; give another --out (or --study-name), or the study's own "
                              "settings\n")
    assert len(trials(out)) == 4


def test_fewer_trials_run_part_of_the_grid_and_the_rest_later(tmp_path, capsys):
    out = tmp_path / "study"
    assert run(capsys, grid_argv(out, "--trials", "3"))[0] == 0
    assert len(set(ran(trials(out)))) == 3
    assert run(capsys, grid_argv(out))[0] == 0
    assert sorted(ran(trials(out))) == sorted(COMBINATIONS)


def test_an_interrupted_grid_trial_is_run_again_on_its_own_combination(tmp_path, capsys,
                                                                       monkeypatch):
    out = tmp_path / "study"

    def interrupted(*args, **kwargs):
        raise Interrupted("stopped by SIGINT after step 3", 130)

    monkeypatch.setattr(objective.api, "train", interrupted)
    assert run(capsys, grid_argv(out))[0] == 130
    first, queued = trials(out)
    assert (queued.state, queued.system_attrs[RETRY_OF], queued.params) == \
        (TrialState.WAITING, 0, first.params)
    assert queued.system_attrs["grid_id"] == first.system_attrs["grid_id"]
    monkeypatch.undo()
    assert run(capsys, grid_argv(out))[0] == 0
    done = trials(out)
    assert [t.state for t in done] == [TrialState.FAIL] + [TrialState.COMPLETE] * 4
    assert sorted(ran(done)) == sorted(COMBINATIONS)


@pytest.mark.parametrize("argv, line", [
    (["--param", "optim.lr_g=loguniform:1e-4:1e-3"], "--param optim.lr_g=loguniform:1e-4:1e-3: "
     "--sampler grid tries every combination of choice:X,Y,... values; give the values of "
     "optim.lr_g to try (e.g. optim.lr_g=choice:A,B) or another --sampler"),
    (["--trials", "5"], "--trials 5: the grid has 4 combinations, each run once; give at most "
     "4, or leave --trials out"),
])
def test_what_a_grid_cannot_run_is_refused_before_any_trial(tmp_path, capsys, argv, line):
    out = tmp_path / "study"
    code, _, err = run(capsys, grid_argv(out, *argv))
    assert (code, err) == (2, f"ganforge: error: {line}\n")
    assert not out.exists()
