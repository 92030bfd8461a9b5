"""Tiny studies for the tune tests: the embedded digits with 32-unit MLPs scored by FID, or the
8-Gaussians ring scored by its mode count, a few dozen steps a run."""

from __future__ import annotations

from pathlib import Path

import optuna

from ganforge.cli import build_parser, main
from ganforge.tune.command import job_from_args
from ganforge.tune.study import open_study

# Runs of seconds: narrow nets, one thread, no trackers, the report only where a test reads it.
TINY = ["model.g_hidden=[32]", "model.d_hidden=[32]", "log.trackers=[]", "train.threads=1",
        "log.report_every_s=none", "log.sample_every=1000", "log.checkpoint_every=1000"]


def tune_argv(out: Path, *extra: str, preset: str = "cgan-digits", metric: str = "fid",
              steps: int = 40, trials: int = 2, seeds: int = 1, samples: int = 200,
              tiny: tuple[str, ...] = tuple(TINY)) -> list[str]:
    """``ganforge tune`` arguments for a tiny study in ``out`` (``extra`` last)."""
    fixed = [arg for override in tiny for arg in ("--set", override)]
    return ["tune", "--preset", preset, *fixed, "--metric", metric, "--steps-per-trial",
            str(steps), "--trials", str(trials), "--seeds", str(seeds), "--samples",
            str(samples), "--out", str(out), *extra]


def toy_argv(out: Path, *extra: str, trials: int = 2) -> list[str]:
    """A study of the 8-Gaussians ring (a second or two a trial), its learning rate searched."""
    return tune_argv(out, "--param", "optim.lr_g=loguniform:1e-4:2e-3", *extra,
                     preset="gan-toy2d", metric="toy-2d", steps=20, trials=trials, samples=256)


def prepare(argv: list[str]) -> optuna.Study:
    """The study ``argv`` describes, made (as the command makes it) before the command runs, so
    a test can queue the trials it needs with ``study.enqueue_trial``."""
    study, _ = open_study(job_from_args(build_parser().parse_args(argv)))
    return study


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def trials(out: Path, name: str | None = None) -> list[optuna.trial.FrozenTrial]:
    """The trials of the study in ``out``'s SQLite file, by number."""
    storage = f"sqlite:///{out.resolve() / 'study.db'}"
    study = optuna.load_study(study_name=name or out.resolve().name, storage=storage)
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
