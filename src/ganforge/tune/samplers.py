"""How a study picks each trial's values: ``--sampler tpe`` (Optuna's default, a model of the
trials so far), ``random``, or ``grid`` — every combination of the ``choice:`` parameters, each
once, as a hand sweep of a preset's variants would train them.

A grid is Optuna's ``GridSampler`` over the choices, seeded alike in every process, so the
workers of one study (and the same command run again) agree on which trial number runs which
combination; trials are claimed under the study's lock (:mod:`.study`), so no combination is
claimed twice. The study holds the grid's size of trials unless ``--trials`` says fewer; the grid
is part of what the study was made for (:meth:`TuneJob.identity`), so other choices go into a
study of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ganforge.errors import ConfigError
from ganforge.tune.space import Param

if TYPE_CHECKING:
    import optuna

    from ganforge.tune.job import TuneJob

GRID_SEED = 0  # the grid's order: the same in every process of a study


@dataclass(frozen=True)
class Sampler:
    """A ``--sampler`` choice: what it does (for ``--help``) and how to make it for a job."""

    doc: str
    make: Callable[["TuneJob"], "optuna.samplers.BaseSampler"]


def grid_space(params: Sequence[Param]) -> dict[str, list[Any]]:
    """The grid of ``params`` (all choices): ``{key: [values]}``."""
    return {param.key: list(param.choices) for param in params}


def grid_size(params: Sequence[Param]) -> int:
    """How many combinations the grid of ``params`` has."""
    return math.prod(len(param.choices) for param in params)


def check_grid(params: Sequence[Param]) -> None:
    """A grid tries listed values only: a range is refused in one line naming the parameter.

    Raises:
        ConfigError: a parameter is not ``choice:X,Y,...``.
    """
    for param in params:
        if param.dist != "choice":
            raise ConfigError(f"--param {param.spec}: --sampler grid tries every combination of "
                              f"choice:X,Y,... values; give the values of {param.key} to try "
                              f"(e.g. {param.key}=choice:A,B) or another --sampler")


def _tpe(job: "TuneJob") -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.TPESampler()


def _random(job: "TuneJob") -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.RandomSampler()


def _grid(job: "TuneJob") -> "optuna.samplers.BaseSampler":
    import optuna

    class Grid(optuna.samplers.GridSampler):
        """Optuna's grid, less its end of an ``optimize`` loop: ``tune`` drives the trials
        itself (``Study.stop`` raises outside that loop), and its claim ends the study."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return Grid(grid_space(job.params), seed=GRID_SEED)


SAMPLERS: dict[str, Sampler] = {
    "tpe": Sampler("Optuna's TPE: each trial's values from a model of the trials so far", _tpe),
    "random": Sampler("each value drawn at random from its distribution", _random),
    "grid": Sampler("every combination of the choice:X,Y,... values once (--trials defaults "
                    "to their number; the default pruner is none)", _grid),
}
