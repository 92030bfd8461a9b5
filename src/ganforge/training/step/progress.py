"""The loop's bookkeeping: when a run is done (:class:`Budget`) and how fast it goes
(:class:`Progress`: the progress bar and the images/s of each stats line).

Kept apart from ``loop.py`` so the loop reads as the order of a run's phases; nothing here
touches G, D or the data.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from tqdm.auto import tqdm

# What the progress bar shows after each stats line: (label, statistic).
POSTFIX = (("D", "Loss/D"), ("G", "Loss/G"), ("D(x)", "Prob/D(x)"),
           ("D(G(z))", "Prob/D(G(z))"), ("img/s", "Speed/images_per_s"))


@dataclass
class Budget:
    """Stop after ``steps`` G steps, ``epochs`` passes over the data or ``minutes`` of training,
    whichever comes first."""

    steps: Optional[int]
    epochs: Optional[float]
    minutes: Optional[float]
    steps_per_epoch: int

    @property
    def total_steps(self) -> Optional[int]:
        limits = [s for s in (self.steps, self._epoch_steps()) if s is not None]
        return min(limits) if limits else None

    def _epoch_steps(self) -> Optional[int]:
        if self.epochs is None:
            return None
        return max(1, math.ceil(self.epochs * self.steps_per_epoch))

    def done(self, step: int, elapsed_s: float) -> bool:
        total = self.total_steps
        if total is not None and step >= total:
            return True
        return self.minutes is not None and elapsed_s >= self.minutes * 60


class Progress:
    """The progress bar of a run and its speed over each window between two stats lines.

    Args:
        name: the bar's label (the run's name).
        total: the budget's steps, or None when only time bounds the run.
        step: the step training starts from (a resumed run's).
        images_per_step: real images one step consumes over all ranks (the global batch ×
            D steps per G step); images/s counts those.
        show: draw the bar (rank 0 with ``log.progress``).

    Attributes:
        images_per_s: the speed of the last closed window (0 before the first).
    """

    def __init__(self, name: str, total: Optional[int], step: int, images_per_step: int,
                 show: bool) -> None:
        self.bar = tqdm(total=total, initial=step, desc=name, unit="step", disable=not show,
                        dynamic_ncols=True, leave=True)
        self.images_per_step = images_per_step
        self.images_per_s = 0.0
        self._window = (time.perf_counter(), step)  # where the open window began

    def advance(self) -> None:
        """One step done."""
        self.bar.update(1)

    def rewind(self, step: int) -> None:
        """Show ``step`` again (the non-finite guard rolled the run back to it)."""
        self.bar.n = step

    def measure(self, step: int) -> float:
        """Close the window at ``step``: its images/s, which a new window starts from."""
        now = time.perf_counter()
        since, first = self._window
        self.images_per_s = (step - first) * self.images_per_step / max(now - since, 1e-9)
        self._window = (now, step)
        return self.images_per_s

    def show(self, record: Mapping[str, float]) -> None:
        """Put a stats line's main values after the bar (``D=0.693 G=0.71 ... img/s=812``)."""
        parts = [f"{short}={record[key]:.3g}" for short, key in POSTFIX
                 if record.get(key) is not None]
        self.bar.set_postfix_str(" ".join(parts), refresh=False)

    def close(self) -> None:
        self.bar.close()
