"""The loop's bookkeeping: the budget, and the images/s and bar of each stats line."""

from __future__ import annotations

import pytest

from ganforge.training.step import progress as progress_module
from ganforge.training.step.progress import Budget, Progress


@pytest.mark.parametrize("steps,epochs,expected", [(10, None, 10), (None, 1.5, 12),
                                                   (20, 0.5, 4), (None, 0.01, 1),
                                                   (None, None, None)])
def test_the_budget_takes_the_first_limit(steps, epochs, expected):
    assert Budget(steps, epochs, None, steps_per_epoch=8).total_steps == expected


def test_the_budget_is_spent_by_steps_or_minutes():
    budget = Budget(5, None, 2.0, steps_per_epoch=8)
    assert not budget.done(4, 119.0)
    assert budget.done(5, 0.0) and budget.done(0, 120.0)
    assert not Budget(None, None, None, steps_per_epoch=8).done(10**6, 10.0**6)


def test_images_per_second_counts_each_window(monkeypatch):
    """A step of 3 D batches of a global batch 16: 48 images; 4 steps in 2 s, then 1 in 0.5 s."""
    clock = iter([100.0, 102.0, 102.5])

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return next(clock)

    monkeypatch.setattr(progress_module, "time", Clock)
    progress = Progress("run", total=10, step=2, images_per_step=48, show=False)
    assert progress.images_per_s == 0.0
    assert progress.measure(6) == 96.0 and progress.images_per_s == 96.0
    assert progress.measure(7) == 96.0


def test_the_bar_shows_the_main_values_of_a_stats_line():
    progress = Progress("run", total=None, step=0, images_per_step=8, show=False)
    progress.show({"Loss/D": 0.69314, "Loss/G": 1.2, "Prob/D(x)": None,
                   "Speed/images_per_s": 812.4, "Critic/real": 3.0})
    assert progress.bar.postfix == "D=0.693 G=1.2 img/s=812"
    progress.advance()
    progress.advance()
    progress.rewind(1)
    assert progress.bar.n == 1
    progress.close()
