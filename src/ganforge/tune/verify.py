"""``--verify K``: the winner trained again with K fresh seeds at the full budget (no pruning),
beside the base preset trained with the same seeds, as mean ± std in one table.

A search picks its best trial among many noisy ones, so its value flatters it; fresh seeds say
what the settings are worth. The seeds follow the study's (a study of 2 seeds verifies with
seeds 2, 3, ...); the runs are ``STUDY_DIR/verify/trial-<n>/seed-<s>`` and
``STUDY_DIR/verify/base/seed-<s>``. A run already scored is read back, and one left unfinished
is resumed, so ``--verify`` run again costs only what is missing. The table is printed and
kept in the study (the page shows it).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ganforge import api
from ganforge.errors import GanforgeError
from ganforge.tune.job import TuneJob
from ganforge.tune.study import SEARCHED, VERIFY

if TYPE_CHECKING:
    import optuna


def _quiet(line: str) -> None:
    """The runs' console lines: their folders keep everything they say."""


def _score(job: TuneJob, run_dir: Path, overrides: list[str]) -> float:
    """The score of one verification run: read back, resumed, or trained."""
    if run_dir.is_dir() and any(run_dir.iterdir()):
        try:
            scores = api.load_run(str(run_dir)).scores()
        except GanforgeError:  # no checkpoint yet: resume it (which says so if it cannot)
            scores = {}
        if job.metric in scores:
            return scores[job.metric]
        run = api.train(resume=str(run_dir), log=_quiet)
    else:
        run = api.train(job.preset, overrides=overrides, out=str(run_dir), log=_quiet)
    assert run is not None
    scores = run.scores()
    if job.metric not in scores:
        raise GanforgeError(f"verification run '{run_dir}' ended without a {job.metric} score")
    return scores[job.metric]


def verify(job: TuneJob, study: "optuna.Study", best: "optuna.trial.FrozenTrial",
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``best`` and the base preset with ``job.verify`` fresh seeds; keep and print the
    table. Returns what the study keeps (``trial``, ``seeds``, ``best``, ``base``)."""
    seeds = list(range(job.seeds, job.seeds + job.verify))
    arms = {"best": (f"trial-{best.number:04d}", list(best.user_attrs.get(SEARCHED, []))),
            "base": ("base", [])}
    verified: dict[str, Any] = {"trial": best.number, "seeds": seeds, "best": [], "base": []}
    for arm, (folder, searched) in arms.items():
        for seed in seeds:
            run_dir = job.folder / "verify" / folder / f"seed-{seed}"
            overrides = job.run_overrides(seed, searched, checks=False)
            verified[arm].append(_score(job, run_dir, overrides))
            log(f"verify: {arm} seed {seed}: {job.metric} {verified[arm][-1]:.4g}")
    study.set_user_attr(VERIFY, verified)
    log(verify_table(job, verified))
    return verified


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4g} ± {std:.2g}"


def verify_table(job: TuneJob, verified: dict[str, Any]) -> str:
    """The table of a verification: the winner and the base preset, mean ± std and each seed."""
    better = "higher" if job.direction == "maximize" else "lower"
    rows = [(f"best (trial {verified['trial']})", verified["best"]),
            (f"base {job.preset}", verified["base"])]
    lines = [f"{job.metric} ({better} is better) over {len(verified['seeds'])} fresh seeds "
             f"({', '.join(map(str, verified['seeds']))}), {job.budget.describe()} a run:",
             f"  {'settings':28s} {'mean ± std':18s} per seed"]
    for name, values in rows:
        lines.append(f"  {name:28s} {_mean_std(values):18s} "
                     f"{', '.join(f'{v:.4g}' for v in values)}")
    return "\n".join(lines)
