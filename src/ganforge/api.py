"""The Python API, a thin facade over the layers for notebook users.

    >>> import ganforge
    >>> run = ganforge.train("cgan-digits", overrides=["train.steps=200"])
    >>> images = run.generate(labels=[3, 3, 7])        # (3, 1, 28, 28) in [-1, 1]
    >>> grid = run.grid(per_class=8)                   # (H, W, 3) uint8, one row per class
    >>> run = ganforge.load_run("runs/cgan-digits-20260101-120000")

:func:`train` resolves a config and hands it to :func:`ganforge.training.launch.launch`;
:func:`load_run` and :class:`Run` are the run layer's (:mod:`ganforge.run.loaded`). Nothing in
the package imports this module: it stands on top, beside the command line.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

from ganforge.config import Config, apply_overrides, resolve
from ganforge.run.loaded import Run, load_config, load_run
from ganforge.training.launch import launch

__all__ = ["Run", "load_config", "load_run", "resolve", "train"]


def train(
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    out: Optional[str] = None,
    resume: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> Optional[Run]:
    """Train a model and return the loaded run (under torchrun: on rank 0; other ranks get None).

    Args:
        config: a resolved :class:`Config` or a preset name (ignored with ``resume`` unless a
            :class:`Config`; None without ``resume`` trains the defaults).
        overrides: ``"section.key=value"`` strings applied on top.
        out: run folder (default: under ``cfg.out_dir``).
        resume: a run folder to continue from its newest valid checkpoint; its saved config is
            used, with ``overrides`` (e.g. a longer budget) applied on top.
    """
    if isinstance(config, Config):
        # A resolved Config (the CLI's, already carrying --steps etc.) wins over a saved one.
        cfg = apply_overrides(copy.deepcopy(config), tuple(overrides))
    elif resume is not None:  # the run's own saved config
        cfg = load_config(resume, overrides)
    else:
        cfg = resolve(preset=config, overrides=tuple(overrides))
    trained = launch(cfg, out=out, resume=resume, log=log)
    if trained is None:  # a rank other than 0: rank 0 holds the run
        return None
    run_dir, device = trained
    return load_run(run_dir, device=str(device))
