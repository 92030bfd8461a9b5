"""The settings every run has, whatever its components: the common part of the data, model and
loss sections (a chosen dataset, model family or loss adds its own, see ``components.py``) and
the optimiser, training, logging, evaluation and diagnostics sections.

Each setting is declared once with its default and its one-line doc (``ganforge.settings``);
``ganforge list --details`` and ``docs/reference/settings.md`` show them. Rules tied to one value live
in the declarations; the checks across sections are in ``validate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ganforge.errors import ConfigError
from ganforge.settings import at_least, between, one_of, optional, positive, setting


@dataclass
class DataCommon:
    """What every dataset takes (``data.*``)."""

    root: Optional[str] = setting(None, "folder with the files (or the file, for arrays); "
                                  "none -> ~/.cache/ganforge/data")
    split: str = setting("train", "'train' or 'test'", check=one_of("train", "test"))
    image_size: Optional[int] = setting(
        None, "resize to this square size; none keeps the native size",
        check=optional(between(4, 1024)),
        message="{key}={value} is out of range; use 8..1024 (e.g. 28, 32 or 64)")
    channels: Optional[int] = setting(None, "1 or 3 to convert; none keeps the native channels",
                                      check=one_of(None, 1, 3),
                                      message="{key}={value}; use 1, 3 or none")
    download: bool = setting(True, "fetch missing files of a downloadable dataset (needs "
                             "network)")
    limit: Optional[int] = setting(None, "use only the first N samples (quick experiments, "
                                   "tests)", check=optional(positive()),
                                   message="{key} must be positive; drop it to use all data")
    classes: Optional[list[int]] = setting(
        None, "keep only these classes, relabelled 0..k-1 in this order (e.g. [0,1,2,3,4]: "
        "seed 000's 5-class run)")

    def check(self, prefix: str) -> None:
        c = self.classes
        if c is not None and not (len(c) >= 2 and len(set(c)) == len(c)):
            raise ConfigError(f"{prefix}classes needs two or more different classes, e.g. "
                              "[0,1,2,3,4], or none")


@dataclass
class ModelCommon:
    """What every model family takes (``model.*``)."""

    conditional: bool = setting(False, "condition G and D on the class label (or condition "
                                "rows)")
    z_dim: int = setting(100, "latent size", check=positive(),
                         message="{key}={value} must be positive; e.g. 100",
                         to="generator.z_dim")
    z_dist: str = setting("normal", "'normal' N(0, 1) or 'uniform' U(-1, 1) (cGAN paper)",
                          check=one_of("normal", "uniform"))
    z_mean: float = setting(0.0, "normal latents' mean (seed 000 draws z ~ N(0.5, 1))")
    init: str = setting("normal02", "'normal02' (N(0,.02), BN N(1,.02)), 'xavier' or "
                        "'default'", check=one_of("normal02", "xavier", "default"),
                        to=("generator.init", "discriminator.init"))
    d_label: str = setting("input", "how a conditional D sees y: 'input' (joined, cGAN), "
                           "'projection' (Miyato & Koyama 2018), 'classifier' (ACGAN)",
                           check=one_of("input", "projection", "classifier"))


@dataclass
class LossCommon:
    """What every loss takes (``loss.*``)."""

    n_critic: Optional[int] = setting(None, "D steps per G step; none -> the loss's own "
                                      "(WGAN: 5, else 1)", check=optional(at_least(1)),
                                      message="{key} must be >= 1, e.g. 5")


@dataclass
class OptimConfig:
    name: str = setting("adam", "'adam', 'sgd' or 'rmsprop'")
    lr_g: float = setting(2e-4, "G's learning rate")
    lr_d: float = setting(2e-4, "D's learning rate")
    betas: list[float] = setting([0.5, 0.999], "Adam's betas")
    eps: float = setting(1e-8, "Adam / RMSprop epsilon")
    momentum: float = setting(0.0, "SGD / RMSprop momentum; the start value when "
                              "momentum_final is set")
    momentum_final: Optional[float] = setting(None, "SGD: momentum rises linearly to this "
                                              "(cGAN paper)")
    momentum_steps: int = setting(0, "... over this many steps")
    lr_decay: float = setting(1.0, "the lr is divided by this every step (cGAN paper: "
                              "1.00004)")
    lr_min: float = setting(0.0, "floor for the decayed lr (cGAN paper: 1e-6)")


@dataclass
class TrainConfig:
    batch_size: int = setting(64, "samples per step (per process under torchrun)")
    steps: Optional[int] = setting(None, "budget in generator steps ...")
    epochs: Optional[float] = setting(None, "... or in passes over the data ...")
    minutes: Optional[float] = setting(None, "... or in wall-clock minutes (--time-budget 5m)")
    seed: int = setting(0, "seeds data order, latents and initial weights")
    device: str = setting("auto", "'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1'")
    threads: Optional[int] = setting(None, "torch CPU threads; none keeps torch's default")
    deterministic: bool = setting(False, "deterministic kernels (slower; bit-exact on the CPU)")
    on_nonfinite: str = setting("stop", "NaN/Inf in a loss or weights: 'stop' (with a "
                                "diagnostic snapshot) or 'rollback' to the last good "
                                "checkpoint")
    rollback_lr_factor: float = setting(0.5, "rollback: learning rates are multiplied by this")
    max_rollbacks: int = setting(3, "rollback: give up (stop) after this many")
    ema: float = setting(0.0, "decay of an EMA copy of G used for samples/metrics; 0 = off")
    ema_start: int = setting(0, "G steps before the EMA starts averaging (copies G until)")
    ema_half_life: Optional[float] = setting(None, "EMA half-life in images (StyleGAN2-ADA: "
                                             "10k); set, it replaces train.ema's fixed decay")
    ema_rampup: Optional[float] = setting(None, "half-life <= this x images seen so far "
                                          "(e.g. 0.05)")
    amp: str = setting("none", "mixed precision: 'none', 'bf16' (CUDA or CPU) or 'fp16' "
                       "(CUDA, with a loss scaler per optimizer)")
    channels_last: bool = setting(False, "conv nets in channels_last memory format (faster "
                                  "convs)")
    compile: bool = setting(False, "torch.compile G and D (CUDA only)")
    sync_batchnorm: bool = setting(False, "torchrun: BatchNorm statistics over all ranks "
                                   "(CUDA)")
    dist_backend: str = setting("auto", "torchrun: 'auto' (NCCL on CUDA, else gloo), nccl, "
                                "gloo")
    dist_timeout_s: float = setting(600.0, "torchrun: a rank silent this long stops the run")
    checkpoint_minutes: Optional[float] = setting(
        10.0, "also checkpoint whenever this much wall time passed since the last one, so a "
        "crash loses minutes whatever the model's speed; none = by steps only")


@dataclass
class LogConfig:
    log_every: int = setting(50, "steps between stats lines (JSONL, trackers)")
    sample_every: int = setting(500, "steps between fixed-noise grids (also at each epoch end)")
    checkpoint_every: int = setting(1000, "steps between checkpoints (also at the end)")
    keep_checkpoints: int = setting(2, "how many recent checkpoints to keep")
    grid_columns: int = setting(10, "samples per class row (conditional) / grid columns")
    grid_samples: int = setting(100, "samples in an unconditional grid")
    trackers: list[str] = setting(["tensorboard"], "experiment trackers: tensorboard, mlflow, "
                                  "wandb ([] = none); the old log.tensorboard=false still "
                                  "removes tensorboard")
    progress: bool = setting(True, "tqdm progress bar")
    max_grid_frames: int = setting(40, "frames kept in samples.gif (every grid PNG is kept)")
    report_every_s: Optional[float] = setting(
        300.0, "min seconds between report.html rebuilds while training (and >= 10x the last "
        "rebuild's time); 0 = at the end only; none = no report (`ganforge report RUN`)")
    checkpoint_minutes: list[float] = setting(
        [], "named checkpoints outside the rotation when the training clock first passes each "
        "value, e.g. [1, 2, 5] -> checkpoints/min_1, min_2, min_5")


@dataclass
class EvalConfig:
    every: int = setting(0, "steps between in-loop evaluations; 0 = off")
    minutes: list[float] = setting(
        [], "also evaluate in-loop when the training clock first passes each value, e.g. "
        "[1, 2, 3] (a time-to-quality curve; the clock of train.minutes)")
    metrics: list[str] = setting(["fid"], "metric registry names (`ganforge list`)")
    samples: int = setting(2000, "fake samples per evaluation (fixed latents and labels)")
    extractor: Optional[str] = setting(None, "feature extractor; none -> '<dataset>-lenet'")
    best: Optional[str] = setting(None, "keep checkpoints/best.* by this metric, e.g. 'fid'")
    final: list[str] = setting([], "metrics scored on the final G when training ends, as "
                               "`ganforge evaluate RUN` does (into metrics.json)")
    final_samples: int = setting(10_000, "samples for eval.final")
    settings: dict[str, dict[str, Any]] = setting(
        {}, "each metric's own settings, e.g. [eval.settings.pr] k = 5 (`ganforge list "
        "--details pr`)")


@dataclass
class DiagnosticsConfig:
    """Thresholds of the training diagnostics (``reporting/diagnostics.py``); each fires once."""

    enabled: bool = setting(True, "run the checks while training (console + "
                            "diagnostics.jsonl)")
    window_steps: int = setting(500, "a stats condition must hold this many steps (3+ lines)")
    d_wins_real: float = setting(0.95, "'D wins': D(x) >= this ...")
    d_wins_fake: float = setting(0.05, "... and D(G(z)) <= this for window_steps")
    class_ratio: float = setting(3.0, "ACGAN: class loss on reals > ratio x that on fakes ...")
    class_gap: float = setting(0.05, "... and above it by this much (nats) for window_steps")
    collapse_ratio: float = setting(0.25, "mode collapse: fixed-noise diversity < this x its "
                                    "peak and x the real data's")
    entropy_ratio: float = setting(0.6, "... or predicted-class entropy < this x its peak")
    frozen_change: float = setting(1e-4, "G frozen: mean |change| of fixed-noise samples "
                                   "([-1, 1])")
    patience: int = setting(3, "consecutive snapshots/evaluations for the two above")


__all__ = ["DataCommon", "ModelCommon", "LossCommon", "OptimConfig", "TrainConfig",
           "LogConfig", "EvalConfig", "DiagnosticsConfig"]
