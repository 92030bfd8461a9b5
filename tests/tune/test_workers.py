"""Several workers on one study: ``--workers 2`` on the default SQLite file, and the same command
run twice at once (as on two machines) through a real PostgreSQL server. Every trial number is
run exactly once and all N are done: none lost, none run twice, none beyond N."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="ganforge tune needs the tune extra: pip install "
                             "'ganforge[tune]'")

from optuna.trial import TrialState  # noqa: E402

from ganforge.bench import Store  # noqa: E402
from ganforge.tune.study import WORKER, engine_url  # noqa: E402
from tests.tune.studies import run, toy_argv, trials  # noqa: E402

N = 4


def check_each_trial_ran_once(done: list[optuna.trial.FrozenTrial], outs: list[Path],
                              study: str) -> set[str]:
    """Every number 0..N-1 once, each finished, its run folder and its record in exactly one
    study folder; returns the workers that ran them."""
    assert [t.number for t in done] == list(range(N))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in done)
    folders = sorted(p.name for out in outs for p in (out / "trials").iterdir())
    assert folders == [f"{n:04d}" for n in range(N)]
    names = sorted(r.name for out in outs for r in Store(out / "records.jsonl").records())
    assert names == [f"{study}#{t.number}" for t in done if t.state == TrialState.COMPLETE]
    return {t.user_attrs[WORKER] for t in done}


@pytest.mark.slow
def test_two_workers_share_the_sqlite_study(tmp_path, capfd):
    out = tmp_path / "study"
    code, stdout, _ = run(capfd, toy_argv(out, "--workers", "2", "--pruner", "none", trials=N))
    assert code == 0
    workers = check_each_trial_ran_once(trials(out), [out], "study")
    assert len(workers) == 2 and f":{os.getpid()}" not in " ".join(workers)
    assert {line.split("]")[0] for line in stdout.splitlines() if line.startswith("[")} == \
        {"[worker 1", "[worker 2"}


POSTGRES = os.environ.get("GANFORGE_TEST_POSTGRES")


@pytest.mark.slow
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set GANFORGE_TEST_POSTGRES="
                    "postgresql://USER@HOST:PORT/DB (.ci/run starts one)")
def test_two_machines_share_a_postgresql_study(tmp_path):
    name = f"pytest-{uuid.uuid4().hex[:10]}"  # the server outlives the test: a study of its own
    outs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    commands = [[sys.executable, "-m", "ganforge", *toy_argv(
        out, "--storage", POSTGRES, "--study-name", name, "--pruner", "none", trials=N)]
        for out in outs]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    logs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    study = optuna.load_study(study_name=name, storage=engine_url(POSTGRES))
    done = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    workers = check_each_trial_ran_once(done, outs, name)
    assert len(workers) == 2 and all((out / "study.html").is_file() for out in outs)
