"""The Python API, a thin facade over the layers for notebook users.

    >>> import ganforge
    >>> run = ganforge.train("cgan-digits", overrides=["train.steps=200"])
    >>> images = run.generate(labels=[3, 3, 7])        # (3, 1, 28, 28) in [-1, 1]
    >>> grid = run.grid(per_class=8)                   # (H, W, 3) uint8, one row per class
    >>> run = ganforge.load_run("runs/cgan-digits-20260101-120000")
    >>> run.scores()                                   # {"label-acc": 0.99, "fid": 8.4}

:func:`train` resolves a config and hands it to :func:`ganforge.training.launch.launch`;
:func:`load_run` and :class:`Run` are the run layer's (:mod:`ganforge.run.loaded`). A caller
that watches the run as it trains (a hyperparameter search) passes ``on_metrics``: it sees every
in-loop evaluation and may end the run early by raising :class:`~ganforge.errors.StopRun`.
Nothing in the package imports this module: it stands on top, beside the command line.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

from ganforge.config import Config, apply_overrides, resolve
from ganforge.metrics import METRICS
from ganforge.metrics.base import HIGHER_IS_BETTER
from ganforge.run.loaded import Run, load_config, load_run
from ganforge.training.launch import launch

__all__ = ["MetricsCallback", "Run", "higher_is_better", "load_config", "load_run", "resolve",
           "train"]

# on_metrics(step, elapsed seconds of training, {"fid": 12.3, ...}); may raise StopRun.
MetricsCallback = Callable[[int, float, dict[str, float]], None]


def train(
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    out: Optional[str] = None,
    resume: Optional[str] = None,
    log: Callable[[str], None] = print,
    on_metrics: Optional[MetricsCallback] = None,
) -> Optional[Run]:
    """Train a model and return the loaded run (under torchrun: on rank 0; other ranks get None).

    Args:
        config: a resolved :class:`Config` or a preset name (ignored with ``resume`` unless a
            :class:`Config`; None without ``resume`` trains the defaults).
        overrides: ``"section.key=value"`` strings applied on top.
        out: run folder (default: under ``cfg.out_dir``).
        resume: a run folder to continue from its newest valid checkpoint; its saved config is
            used, with ``overrides`` (e.g. a longer budget) applied on top.
        log: one-line console messages.
        on_metrics: called after each in-loop evaluation (``eval.every`` steps,
            ``eval.minutes``) as ``on_metrics(step, elapsed_s, values)``, ``values`` by metric
            name (``{"fid": 12.3}``); under torchrun on rank 0 only. Raising
            :class:`~ganforge.errors.StopRun` in it ends the run after that step.

    Raises:
        StopRun: ``on_metrics`` ended the run; the run folder kept the step (checkpoint,
            stats, report, ``stopped.json``), and the exception names it (``run_dir``,
            ``step``).
    """
    if isinstance(config, Config):
        # A resolved Config (the CLI's, already carrying --steps etc.) wins over a saved one.
        cfg = apply_overrides(copy.deepcopy(config), tuple(overrides))
    elif resume is not None:  # the run's own saved config
        cfg = load_config(resume, overrides)
    else:
        cfg = resolve(preset=config, overrides=tuple(overrides))
    trained = launch(cfg, out=out, resume=resume, log=log, on_metrics=on_metrics)
    if trained is None:  # a rank other than 0: rank 0 holds the run
        return None
    run_dir, device = trained
    return load_run(run_dir, device=str(device))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (a registered name: ``fid``, ``label-acc``) is
    better; the in-loop best checkpoint and the reports judge it the same way.

    Raises:
        ConfigError: no metric of that name (the closest one and every valid name).
    """
    METRICS.get(metric.split("/")[0])  # a detail ("pr/recall") is judged as its own name
    return metric in HIGHER_IS_BETTER
