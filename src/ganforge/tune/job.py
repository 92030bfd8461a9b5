"""What one study is: the preset, the space, the metric and its direction, the budget of a run,
the seeds of a trial, where it is stored — :class:`TuneJob`, made once from the command line and
handed to every worker — and the overrides each run of a trial trains with.

A trial runs its seeds one after the other, each an ordinary run at the trial's budget. In-loop
metrics run at :data:`POINTS` - 1 check points of each run (a quarter, half and three quarters
of the budget: ``eval.minutes`` for a time budget, ``eval.every`` for a step budget), which the
pruner sees (none with ``--pruner none``: they would only spend the budget); the run's value is
its final score (``eval.final``, held-out data).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ganforge.tune.space import Param, as_text

POINTS = 4  # a run is checked at 1/4, 2/4 and 3/4 of its budget
BEST_FILE = "best.toml"  # in the study folder: the best settings as a preset
PAGE_FILE = "study.html"  # the study page
STORE_FILE = "records.jsonl"  # the default results store
DATABASE_FILE = "study.db"  # the default storage: SQLite


@dataclass(frozen=True)
class Budget:
    """The budget of one run: minutes of training or G steps (one of them).

    Attributes:
        minutes: wall-clock minutes (``train.minutes``), or None.
        steps: G steps (``train.steps``), or None.
    """

    minutes: Optional[float] = None
    steps: Optional[int] = None

    def describe(self) -> str:
        return f"{self.minutes:g} minutes" if self.minutes is not None else f"{self.steps} steps"

    def as_dict(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "steps": self.steps}

    @property
    def every(self) -> int:
        """Steps between check points of a step budget."""
        assert self.steps is not None
        return max(1, math.ceil(self.steps / POINTS))

    @property
    def override(self) -> str:
        """The budget as a ``--set`` override (it replaces the preset's budget)."""
        if self.minutes is not None:
            return f"train.minutes={self.minutes!r}"
        return f"train.steps={self.steps}"

    def overrides(self, checks: bool = True) -> list[str]:
        """The budget, and (``checks``) in-loop metrics at the check points."""
        if self.minutes is not None:
            marks = [round(self.minutes * k / POINTS, 9) for k in range(1, POINTS)]
            return [self.override, "eval.every=0",
                    f"eval.minutes=[{','.join(map(repr, marks))}]" if checks else "eval.minutes=[]"]
        return [self.override, f"eval.every={self.every if checks else 0}", "eval.minutes=[]"]

    def point(self, step: int, elapsed_s: float) -> int:
        """Which check point an evaluation at ``step`` / ``elapsed_s`` is (1..POINTS-1), or 0
        (none: the end, or a repeat)."""
        if self.minutes is not None:
            k = sum(elapsed_s >= self.minutes * 60 * j / POINTS - 1e-6 for j in range(1, POINTS))
        else:
            k = step // self.every if step % self.every == 0 else 0
        return k if 1 <= k < POINTS else 0


@dataclass(frozen=True)
class TuneJob:
    """One study, as every worker runs it.

    Attributes:
        preset: the preset the study tunes.
        params: the searched parameters.
        fixed: ``--set`` overrides every run gets.
        metric: the registered metric to optimise (``fid``, ``label-acc``).
        direction: "minimize" or "maximize".
        budget: the budget of each run.
        trials: how many trials the study holds when done.
        seeds: runs per trial (seeds 0..seeds-1).
        out: the study folder.
        storage: the Optuna storage URL (default: SQLite in ``out``).
        study_name: the study's name in the storage.
        pruner: a name in :data:`ganforge.tune.pruning.PRUNERS`.
        sampler: a name in :data:`ganforge.tune.samplers.SAMPLERS` ("grid": every
            combination of the choices).
        startup_trials: trials that complete before the median pruner prunes.
        samples: samples per score (in-loop and final).
        workers: processes on this machine.
        verify: fresh seeds for re-verifying the winner (0: none).
        store: the results store file.
        storage_given: the storage came from ``--storage`` (the command names it).
    """

    preset: str
    params: tuple[Param, ...]
    fixed: tuple[str, ...]
    metric: str
    direction: str
    budget: Budget
    trials: int
    seeds: int
    out: str
    storage: str
    study_name: str
    pruner: str = "median"
    sampler: str = "tpe"
    startup_trials: int = 3
    samples: int = 2000
    workers: int = 1
    verify: int = 0
    store: str = ""
    storage_given: bool = False

    @property
    def folder(self) -> Path:
        return Path(self.out)

    @property
    def checks(self) -> bool:
        """Whether runs are scored at the check points: only for a pruner to judge them (in-loop
        scoring spends the run's training clock)."""
        return self.pruner != "none"

    def identity(self) -> dict[str, Any]:
        """What a stored study must share with this command to go on with it (a grid: its
        combinations too, which the trial numbers index)."""
        identity = {"preset": self.preset, "metric": self.metric, "direction": self.direction,
                    "budget": self.budget.as_dict(), "seeds": self.seeds}
        if self.sampler == "grid":
            identity["grid"] = {param.key: list(param.choices) for param in self.params}
        return identity

    def protocol(self, seeds: list[int]) -> dict[str, Any]:
        """How a trial's value was measured (a results store record's ``protocol``)."""
        return {"minutes": self.budget.minutes, "steps": self.budget.steps, "seeds": seeds,
                "metric": self.metric, "samples": self.samples, "direction": self.direction,
                "study": self.study_name}

    def run_overrides(self, seed: int, searched: list[str], checks: bool = True) -> list[str]:
        """Everything one run of a trial trains with besides the preset: the fixed overrides,
        the budget and its check points, the metric's scoring, the seed, the trial's values."""
        scoring = [f"eval.metrics=[{self.metric}]", f"eval.samples={self.samples}",
                   f"eval.final=[{self.metric}]", f"eval.final_samples={self.samples}",
                   "eval.best=none", "log.progress=false"]
        return [*self.fixed, *self.budget.overrides(checks), *scoring, f"train.seed={seed}",
                *searched]

    def command(self) -> str:
        """The study's command, canonical (a storage's password hidden)."""
        parts = ["ganforge", "tune", "--preset", self.preset]
        for param in self.params:
            parts += ["--param", param.spec]
        for override in self.fixed:
            parts += ["--set", override]
        parts += ["--metric", self.metric, "--direction", self.direction]
        parts += (["--minutes-per-trial", as_text(self.budget.minutes)]
                  if self.budget.minutes is not None
                  else ["--steps-per-trial", str(self.budget.steps)])
        if self.sampler != "tpe":
            parts += ["--sampler", self.sampler]
        parts += ["--trials", str(self.trials), "--seeds", str(self.seeds), "--pruner",
                  self.pruner, "--samples", str(self.samples), "--out", self.out]
        if self.storage_given:
            parts += ["--storage", hide_password(self.storage)]
        if self.workers > 1:
            parts += ["--workers", str(self.workers)]
        if self.verify:
            parts += ["--verify", str(self.verify)]
        return shlex.join(parts)


def default_storage(out: str | Path) -> str:
    """The SQLite file in the study folder, as an Optuna storage URL."""
    return f"sqlite:///{Path(out).resolve() / DATABASE_FILE}"


def hide_password(url: str) -> str:
    """A storage URL fit to print: ``postgresql://user:***@host/db``."""
    from sqlalchemy.engine import make_url  # optuna's own dependency
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL: refused when the storage opens, with its own message
        return url
