"""Checking a resolved config: each section's declared rules, the checks across the fixed
sections, each metric's own settings, and what the convergence aids a config switches on say of
the model (R1 on a BatchNorm'd D). What the other chosen components say of each other (a loss
that cannot train a model family) is asked when the run is built, through
:func:`~ganforge.config.components.check_components`, with its data."""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

from ganforge.config.coerce import coerce, unknown_key
from ganforge.config.components import SPECS, check_components
from ganforge.errors import ConfigError
from ganforge.registry import AIDS, METRICS
from ganforge.settings import check_values


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, f"config key '{key}' is {value!r}; choose one of: {', '.join(choices)}")


def metric_settings(name: str, values: dict[str, Any]) -> Any:
    """Metric ``name``'s settings object from ``values`` (``eval.settings.<name>``), typed and
    checked against what the metric declares.

    Raises:
        ConfigError: an unknown metric, a key it does not take, or a value breaking its rule.
    """
    cls = METRICS.settings(name)
    prefix = f"eval.settings.{name}."
    if cls is None:
        if values:
            raise ConfigError(f"metric '{name}' takes no settings; remove [eval.settings.{name}]")
        return None
    hints = typing.get_type_hints(cls)
    obj = cls()
    for key, value in values.items():
        if key not in hints:
            raise unknown_key(key, obj, prefix)
        setattr(obj, key, coerce(value, hints[key], prefix + key))
    check_values(obj, prefix)
    return obj


def _check_fixed(cfg: Any) -> None:
    """The optimiser, training, logging and evaluation sections, and their ties."""
    o, t, g, e = cfg.optim, cfg.train, cfg.log, cfg.eval
    _choice(o.name, "optim.name", ("adam", "sgd", "rmsprop"))
    _check(o.lr_g > 0 and o.lr_d > 0, "optim.lr_g and optim.lr_d must be positive, e.g. 2e-4")
    _check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
           "optim.betas must be two numbers in [0, 1), e.g. [0.5, 0.999]")
    _check(o.lr_decay >= 1.0, "optim.lr_decay divides the lr every step; use >= 1 (1 = off)")
    _check(0 <= o.momentum < 1 and (o.momentum_final is None or 0 <= o.momentum_final < 1),
           "optim.momentum must be in [0, 1)")
    _check(t.batch_size > 0, f"train.batch_size={t.batch_size} must be positive, e.g. 64")
    _check(t.steps is None or t.steps > 0, "train.steps must be positive")
    _check(t.epochs is None or t.epochs > 0, "train.epochs must be positive")
    _check(t.minutes is None or t.minutes > 0, "train.minutes must be positive")
    _check(t.threads is None or t.threads > 0, "train.threads must be positive")
    _choice(t.on_nonfinite, "train.on_nonfinite", ("stop", "rollback"))
    _check(0.0 < t.rollback_lr_factor <= 1.0,
           f"train.rollback_lr_factor={t.rollback_lr_factor} must be in (0, 1], e.g. 0.5")
    _check(t.max_rollbacks >= 0, "train.max_rollbacks must be >= 0, e.g. 3")
    _check(0.0 <= t.ema < 1.0, f"train.ema={t.ema} must be in [0, 1); e.g. 0.999 (0 = off)")
    _check(t.ema_start >= 0, "train.ema_start must be >= 0")
    _check(t.ema_half_life is None or t.ema_half_life > 0,
           "train.ema_half_life must be positive (images), e.g. 10000, or none")
    _check(t.ema_rampup is None or (t.ema_rampup > 0 and t.ema_half_life is not None),
           "train.ema_rampup must be positive (e.g. 0.05) and needs train.ema_half_life")
    _choice(t.amp, "train.amp", ("none", "bf16", "fp16"))
    _choice(t.dist_backend, "train.dist_backend", ("auto", "nccl", "gloo"))
    _check(t.dist_timeout_s > 0, "train.dist_timeout_s must be positive, e.g. 600")
    _check(t.checkpoint_minutes is None or t.checkpoint_minutes > 0,
           "train.checkpoint_minutes must be positive, e.g. 10 (none = by steps only)")
    _check(bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device)),
           f"train.device={t.device!r}; use auto, cpu, cuda, cuda:N or mps")
    for key in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                "grid_columns", "grid_samples", "max_grid_frames"):
        _check(getattr(g, key) > 0, f"log.{key} must be positive")
    _check(len(set(g.trackers)) == len(g.trackers),
           f"log.trackers={g.trackers} names a tracker twice; list each once")
    _check(e.every >= 0, "eval.every must be >= 0 (0 turns in-loop metrics off)")
    _check(e.samples > 1, "eval.samples must be at least 2, e.g. 2000")
    _check(e.final_samples > 1, "eval.final_samples must be at least 2, e.g. 10000")
    _check(e.best is None or e.best in e.metrics,
           f"eval.best={e.best!r} is not in eval.metrics {e.metrics}; add it there")
    _check(e.best is None or e.every > 0 or bool(e.minutes),
           "eval.best needs in-loop metrics; set eval.every or eval.minutes")
    _check(all(m > 0 for m in e.minutes) and all(a < b for a, b in zip(e.minutes, e.minutes[1:])),
           f"eval.minutes={e.minutes} must be positive and increasing, e.g. [1, 2, 3]")
    _check(g.report_every_s is None or g.report_every_s >= 0,
           "log.report_every_s must be >= 0 (0 = report at the end only) or none")
    _check(all(m > 0 for m in g.checkpoint_minutes)
           and all(a < b for a, b in zip(g.checkpoint_minutes, g.checkpoint_minutes[1:])),
           f"log.checkpoint_minutes={g.checkpoint_minutes} must be positive and increasing, "
           "e.g. [1, 2, 5, 10]")
    dg = cfg.diagnostics
    _check(dg.window_steps >= 1 and dg.patience >= 1,
           "diagnostics.window_steps and diagnostics.patience must be >= 1")
    _check(0 < dg.d_wins_fake < dg.d_wins_real < 1,
           "diagnostics needs 0 < d_wins_fake < d_wins_real < 1, e.g. 0.05 and 0.95")
    _check(dg.class_ratio >= 1 and dg.class_gap >= 0,
           "diagnostics.class_ratio must be >= 1 and class_gap >= 0, e.g. 3 and 0.5")
    for key in ("collapse_ratio", "entropy_ratio"):
        _check(0 < getattr(dg, key) < 1, f"diagnostics.{key} must be in (0, 1), e.g. 0.25")
    _check(dg.frozen_change >= 0, "diagnostics.frozen_change must be >= 0, e.g. 1e-4")


def validate(cfg: Any) -> None:
    """Every check a config can pass without reading data; raises the first ConfigError."""
    for section in SPECS:
        check_values(getattr(cfg, section), f"{section}.")
    _check_fixed(cfg)
    typed = {}
    for name, values in cfg.eval.settings.items():
        METRICS.get(name)  # an unknown metric is named, with the closest one
        obj = metric_settings(name, values)
        typed[name] = dataclasses.asdict(obj) if obj is not None else {}
    cfg.eval.settings = typed  # saved typed: "k": 5, not "5"
    check_components(cfg, None, kinds=(AIDS,))
