"""What the loop tells whoever watches a run, and the bare default for when nobody does.

The loop never imports the room that watches a run (progress grids, in-loop metrics,
diagnostics, the report: ``ganforge.training.watch``). Its caller passes a factory that builds a
:class:`RunHooks` from a :class:`HookContext`; the trainer calls the factory before it writes
anything (so a missing evaluator stops the run before a folder exists), and then:

====================  ===============================================================
``open(step)``        the run folder exists (config written, stats collector attached)
``snapshot(step)``    a fixed-noise snapshot is due (every ``log.sample_every`` steps,
                      at each epoch end, at the start and at the end)
``metrics_due(step)`` / ``metrics(step)`` / ``is_best(values, step)``
                      in-loop metrics (every ``eval.every`` steps; at ``eval.minutes``
                      the loop asks without ``metrics_due``) and whether they improved
                      (then the trainer saves ``checkpoints/best.*``); ``metrics`` runs
                      on rank 0 only
``evaluated(step, elapsed_s, values)``
                      the caller's word on those values (rank 0): a
                      :class:`~ganforge.errors.StopRun` ends the run after this step
``finish(step)``      training ended, before the last checkpoint (GIF, final grid, plots)
``close(step)``       after ``summary.json`` (the final report)
``interrupt(step)``   a stop signal (or the caller's ``StopRun``) ended the run after
                      ``step``, saved (the report, no summary: the run is not finished)
====================  ===============================================================

``state_dict()`` goes into every checkpoint and a resumed run's hooks are built from it;
``rewind(state)`` is the non-finite guard's rollback to a checkpoint.

:class:`RunHooks` itself only keeps the bookkeeping every rank must share (the steps of the
snapshots); it is what ranks other than 0 of a ``torchrun`` launch, and bare trainers in tests,
get.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

if TYPE_CHECKING:
    from ganforge.errors import StopRun
    from ganforge.reporting.stats import StatsCollector
    from ganforge.training.step.setup import Setup


@dataclass
class HookContext:
    """What the hooks of one run are built from.

    Attributes:
        setup: the run's components (live G, noise, data, config).
        run_dir: the run folder (it may not exist yet when the hooks are built).
        stats: the run's statistics collector; hooks may attach writers to it in ``open``.
        log: one-line console messages.
        state: the checkpoint's metadata when the run resumes, else None.
    """

    setup: "Setup"
    run_dir: Path
    stats: "StatsCollector"
    log: Callable[[str], None] = print
    state: Optional[Mapping[str, Any]] = None

    @property
    def resumed(self) -> bool:
        return self.state is not None


HookFactory = Callable[[HookContext], "RunHooks"]


class RunHooks:
    """The loop's calls out, with nothing watching: only the snapshot steps are kept.

    Args:
        ctx: the run's context; a resumed run continues the snapshot steps of its checkpoint.
    """

    def __init__(self, ctx: HookContext) -> None:
        self.grid_steps: list[int] = list((ctx.state or {}).get("grid_steps", []))

    @property
    def last_snapshot(self) -> Optional[int]:
        return self.grid_steps[-1] if self.grid_steps else None

    def open(self, step: int) -> None:
        """The run folder exists and training starts (or resumes) at ``step``."""

    def snapshot(self, step: int) -> None:
        """A fixed-noise snapshot of G at ``step``; here only its step is remembered."""
        if step not in self.grid_steps:
            self.grid_steps.append(step)

    def metrics_due(self, step: int) -> bool:
        """Whether in-loop metrics run after ``step`` (must agree on every rank)."""
        return False

    def metrics(self, step: int) -> dict[str, float]:
        """``{"Metrics/<name>": value}`` of the current G (called on rank 0 only)."""
        return {}

    def is_best(self, values: Mapping[str, float], step: int) -> bool:
        """Whether ``values`` are the best so far (the trainer then saves ``best``)."""
        return False

    def evaluated(self, step: int, elapsed_s: float, values: Mapping[str, float]
                  ) -> Optional["StopRun"]:
        """The caller's word on in-loop ``values`` just computed at ``step`` (rank 0 only):
        the :class:`~ganforge.errors.StopRun` that ends the run here, or None to go on."""
        return None

    def finish(self, step: int) -> None:
        """Training ended at ``step``; called before the last checkpoint is written."""

    def close(self, step: int) -> None:
        """After ``summary.json``: the last thing a run does."""

    def interrupt(self, step: int) -> None:
        """A stop signal ended the run after ``step``; its checkpoint and stats are written."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the hooks (its ``grid_steps`` and ``monitor`` entries)."""
        return {"grid_steps": list(self.grid_steps), "monitor": None}

    def rewind(self, state: Mapping[str, Any]) -> None:
        """Back to a checkpoint's state (the non-finite guard's rollback).

        Snapshots after the checkpoint are redone; metrics already computed are kept, since
        those evaluations happened.
        """
        self.grid_steps = list(state.get("grid_steps", []))
