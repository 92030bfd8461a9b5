"""One training job from start to end: join the world, lock the folder, watch, train.

:func:`launch` is what ``ganforge train`` and ``ganforge.train`` run. Under ``torchrun`` every
rank calls it: rank 0 names the run folder and holds its lock, every rank builds its trainer,
and the trainer gets the run's watchers (``training.watch``) as hooks — the one place where the
loop and what watches it meet.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Optional

import torch

from ganforge.config import Config
from ganforge.run.layout import new_run_dir
from ganforge.training.step.loop import Trainer
from ganforge.training.watch.hooks import MetricsCallback, Watchers
from ganforge.training.world.ranks import session


def launch(cfg: Config, out: Optional[str] = None, resume: Optional[str | Path] = None,
           log: Callable[[str], None] = print, on_metrics: Optional[MetricsCallback] = None
           ) -> Optional[tuple[Path, torch.device]]:
    """Train ``cfg`` into a new run folder, or continue the run in ``resume``.

    Args:
        cfg: the resolved config (for a resumed run: its saved config with any overrides).
        out: the new run's folder (default: under ``cfg.out_dir``); ignored with ``resume``.
        resume: a run folder to continue from its newest valid checkpoint.
        log: one-line console messages (silenced on ranks other than 0).
        on_metrics: the caller's callback on in-loop metrics (rank 0; see
            :class:`~ganforge.training.watch.hooks.Watchers`).

    Returns:
        ``(run folder, device)`` on rank 0; None on the other ranks of a ``torchrun`` launch.

    Raises:
        StopRun: ``on_metrics`` ended the run (saved; ``run_dir`` and ``step`` filled in).
    """
    with session(cfg.train) as world:
        run_dir = Path(resume) if resume is not None else world.from_main(
            lambda: new_run_dir(cfg.name, cfg.out_dir, cfg.run_name, out))
        assert run_dir is not None
        with world.lock(run_dir):  # one training process per run folder, released however it ends
            trainer = Trainer(cfg, run_dir, resume=resume is not None, log=world.log(log),
                              hooks=functools.partial(Watchers, main=world.is_main,
                                                      on_metrics=on_metrics))
            trainer.fit()
    return (run_dir, trainer.s.device) if world.is_main else None
