"""One trial: the preset trained once per seed with the trial's values, through the public API;
the trial's value is the mean of the runs' final scores.

Each run is an ordinary run folder, ``STUDY_DIR/trials/<number>/seed-<seed>/`` (report,
metrics, checkpoints), that reports its in-loop metric to the pruner as it trains
(:class:`~ganforge.tune.pruning.Reporter`). How a trial ends is told to the study:

* **complete**: every seed scored; the value is their mean (each seed's value is kept in the
  trial's ``values`` attribute) and the trial goes into the results store;
* **pruned**: the pruner stopped a run at a check point (the run folder is saved and marked
  stopped, ``stopped.json``);
* **failed**, with its reason: the config refused the combination, the run went non-finite
  (``train.on_nonfinite=stop``), the score is not a number, ... — and the study goes on;
* **interrupted** (Ctrl-C, SIGTERM): failed, its values queued again as a new trial
  (:func:`~ganforge.tune.study.retry`), and the command ends.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from ganforge import api
from ganforge.errors import GanforgeError, Interrupted, StopRun
from ganforge.tune.job import TuneJob
from ganforge.tune.outputs import record_trial
from ganforge.tune.pruning import Reporter
from ganforge.tune.study import FIXED, REASON, SEARCHED, VALUES, Heartbeat, retry


def _quiet(line: str) -> None:
    """The runs' console lines: their folders keep everything they say."""


class Objective:
    """Runs the trials a worker claims.

    Args:
        job: the study.
        study: the Optuna study (this worker's connection to it).
        storage: its storage (for the heartbeat).
        log: one line per trial.
    """

    def __init__(self, job: TuneJob, study: optuna.Study, storage: Any,
                 log: Callable[[str], None] = print) -> None:
        self.job, self.study, self.storage, self.log = job, study, storage, log

    def run(self, trial: optuna.Trial) -> TrialState:
        """Run ``trial``'s seeds and tell the study how it ended; returns that state.

        Raises:
            Interrupted, KeyboardInterrupt: a stop signal; the trial is failed and queued
                again first.
        """
        try:
            searched = [param.override(param.suggest(trial)) for param in self.job.params]
        except ValueError as err:  # a queued trial of an earlier space (another range)
            return self._end(trial, TrialState.FAIL, f"its queued values do not fit the "
                             f"space: {' '.join(str(err).split())}", "")
        trial.set_user_attr(SEARCHED, searched)
        trial.set_user_attr(FIXED, list(self.job.fixed))
        shown = " ".join(searched)
        values: list[float] = []
        config: dict[str, Any] = {}
        with Heartbeat(self.storage, trial):
            try:
                for index in range(self.job.seeds):
                    value, config = self._one_run(trial, searched, index)
                    values.append(value)
                    trial.set_user_attr(VALUES, values)
            except StopRun as stop:
                return self._end(trial, TrialState.PRUNED, stop.reason, shown)
            except (Interrupted, KeyboardInterrupt):
                self._end(trial, TrialState.FAIL, "interrupted; its values are queued again",
                          shown)
                retry(self.study, self._frozen(trial.number))
                raise
            except Exception as err:  # noqa: BLE001 -- one trial's failure must not end the study
                reason = str(err) if isinstance(err, GanforgeError) else \
                    f"{type(err).__name__}: {err}"
                return self._end(trial, TrialState.FAIL, " ".join(reason.split()), shown)
        mean = sum(values) / len(values)
        if not math.isfinite(mean):
            return self._end(trial, TrialState.FAIL, f"{self.job.metric} is {mean} (seed "
                             f"values {values})", shown)
        self.study.tell(trial, mean)
        record_trial(self.job, trial.number, values, searched, config)
        per_seed = ", ".join(f"{v:.4g}" for v in values)
        self.log(f"trial {trial.number}: {self.job.metric} {mean:.4g} (seeds: {per_seed})  "
                 f"{shown}")
        return TrialState.COMPLETE

    def _one_run(self, trial: optuna.Trial, searched: list[str], index: int
                 ) -> tuple[float, dict[str, Any]]:
        """Train seed ``index`` of ``trial``; its score and its saved config."""
        seed = index  # the study's seeds are 0..seeds-1; --verify takes the next ones
        run_dir = self.job.folder / "trials" / f"{trial.number:04d}" / f"seed-{seed}"
        overrides = self.job.run_overrides(seed, searched, checks=self.job.checks)
        run = api.train(self.job.preset, overrides=overrides, out=str(run_dir), log=_quiet,
                        on_metrics=Reporter(trial, self.job, index, seed))
        assert run is not None  # one process: this one is rank 0
        scores = run.scores()
        if self.job.metric not in scores:
            raise GanforgeError(f"run '{run_dir}' ended without a {self.job.metric} score")
        return scores[self.job.metric], run.config

    def _end(self, trial: optuna.Trial, state: TrialState, reason: str, shown: str
             ) -> TrialState:
        trial.set_user_attr(REASON, reason)
        self.study.tell(trial, state=state)
        word = "pruned" if state == TrialState.PRUNED else "failed"
        self.log(f"trial {trial.number}: {word}: {reason}  {shown}")
        return state

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)
