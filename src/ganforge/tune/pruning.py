"""Pruning: each run of a trial reports its in-loop metric at the check points of its budget,
and the study's pruner may end the trial there.

The reports reach Optuna through the run's ``on_metrics`` callback (:class:`Reporter`), which
raises :class:`~ganforge.errors.StopRun` when the pruner says so: the run saves its step and
marks itself stopped (``stopped.json``), and the trial is told it was pruned. A trial's seeds
run one after the other and report at their own Optuna steps (seed i, check point k ->
``i * (POINTS - 1) + k``), so every trial is compared with the others at the same seed and the
same share of the budget — and a bad setting dies at its first check point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ganforge.errors import StopRun
from ganforge.tune.job import POINTS, TuneJob

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Pruner:
    """A ``--pruner`` choice: what it does (for ``--help``) and how to make it for a job."""

    doc: str
    make: Callable[[TuneJob], "optuna.pruners.BasePruner"]


def _median(job: TuneJob) -> "optuna.pruners.BasePruner":
    import optuna

    # No warm-up: the first check point already judges (a quarter of the first seed's budget).
    return optuna.pruners.MedianPruner(n_startup_trials=job.startup_trials, n_warmup_steps=0)


def _halving(job: TuneJob) -> "optuna.pruners.BasePruner":
    import optuna

    # Rungs at check points 1, 3, 9, ...: a third of the trials goes on from each.
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3,
                                                  min_early_stopping_rate=0)


def _none(job: TuneJob) -> "optuna.pruners.BasePruner":
    import optuna

    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Pruner] = {
    "median": Pruner("stop a trial whose value at a check point is worse than the median of "
                     "the trials before it there (after --startup-trials completed)", _median),
    "halving": Pruner("successive halving: at check points 1, 3, 9, ... only the best third "
                      "of the trials that reached it goes on", _halving),
    "none": Pruner("every trial runs its whole budget, scored at its end only", _none),
}


class Reporter:
    """The ``on_metrics`` callback of one run of a trial: reports the metric at each check
    point and stops the run when the pruner says so.

    Args:
        trial: the Optuna trial.
        job: the study.
        seed_index: which of the trial's seeds this run is (0-based).
        seed: that seed (named in the reason).

    Attributes:
        reports: ``(Optuna step, value)`` reported so far.
    """

    def __init__(self, trial: "optuna.Trial", job: TuneJob, seed_index: int, seed: int) -> None:
        self.trial, self.job, self.seed_index, self.seed = trial, job, seed_index, seed
        self.reports: list[tuple[int, float]] = []
        self._seen: set[int] = set()

    def __call__(self, step: int, elapsed_s: float, values: dict[str, Any]) -> None:
        k = self.job.budget.point(step, elapsed_s)
        if not k or k in self._seen or self.job.metric not in values:
            return  # not a check point (the end; a repeat)
        self._seen.add(k)
        value = float(values[self.job.metric])
        at = self.seed_index * (POINTS - 1) + k
        self.trial.report(value, at)
        self.reports.append((at, value))
        if self.trial.should_prune():
            shown = f"{value:.4g}" if math.isfinite(value) else str(value)
            raise StopRun(f"pruned by the study at check point {k}/{POINTS} of seed "
                          f"{self.seed} (step {step}, {self.job.metric} {shown})")
