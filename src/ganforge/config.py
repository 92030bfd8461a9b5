"""Typed run configuration: every default in one place, presets as small diffs, strict overrides.

A run is described by :class:`Config`. It is resolved once — defaults, then a preset (a TOML file
in ``configs/``, which may name a ``base`` preset), then a user TOML file, then ``--set`` overrides —
validated, and saved as ``config.json`` in the run folder. Unknown keys, wrong types and
out-of-range values raise :class:`~ganforge.errors.ConfigError` with the list of valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ganforge.errors import ConfigError, unknown_name

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    name: str = "digits"              # dataset registry key; "digits" is embedded (no download)
    root: Optional[str] = None        # folder with the files; None -> ~/.cache/ganforge/data
    split: str = "train"              # "train" or "test"
    image_size: Optional[int] = None  # resize to this square size; None keeps the native size
    channels: Optional[int] = None    # 1 or 3 to convert; None keeps the native channels
    download: bool = True             # fetch missing torchvision datasets (needs network)
    limit: Optional[int] = None       # use only the first N samples (quick experiments, tests)
    classes: Optional[list[int]] = None  # keep only these classes, relabelled 0..k-1 in this
                                      # order (e.g. [0,1,2,3,4]: seed 000's 5-class run)
    toy: str = "8gaussians"           # toy-2d only: 8gaussians | 25gaussians | swissroll |
                                      # ring-angle (conditioned on the angle, (cos, sin))
    toy_samples: int = 100_000        # toy-2d only: size of the drawn data set
    labels: str = "class"             # celeba: "class" (none) or "attributes" (40 binary labels)
    bad_files: str = "skip"           # image-folder: "skip" unreadable files (counted) or "error"


@dataclass
class ModelConfig:
    arch: str = "mlp"                 # model registry key: mlp | dcgan | cgan-paper | ...
    conditional: bool = False         # condition G and D on the class label
    z_dim: int = 100                  # latent size
    z_dist: str = "normal"            # "normal" N(0, 1) or "uniform" U(-1, 1) (cGAN paper)
    z_mean: float = 0.0               # normal latents' mean (seed 000 draws z ~ N(0.5, 1))
    g_hidden: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])  # MLP widths of G
    d_hidden: list[int] = field(default_factory=lambda: [512, 512, 512])        # MLP widths of D
    g_width: int = 64                 # conv nets: channels of G's last feature map
    d_width: int = 64                 # conv nets: channels of D's first feature map
    g_norm: str = "batch"             # "batch" or "none"
    d_norm: str = "none"              # "batch", "layer" or "none"
    d_dropout: float = 0.0            # dropout after each hidden D layer
    g_dropout: float = 0.0            # dropout after each hidden G layer
    embed_dim: Optional[int] = None   # label embedding size; None -> number of classes (seed 001)
    init: str = "normal02"            # "normal02" (N(0,.02), BN N(1,.02)), "xavier" or "default"
    d_label: str = "input"            # how a conditional D sees y: "input" (joined, cGAN),
                                      # "projection" (Miyato & Koyama 2018), "classifier" (ACGAN)
    spectral_norm: bool = False       # spectral normalisation of every D weight (SNGAN)
    d_fc: int = 0                     # dcgan: hidden FC width before D's heads (seed 000: 1024)
    d_mbstd: int = 0                  # minibatch-std group size in D (ProGAN; e.g. 4); 0 = off


@dataclass
class LossConfig:
    name: str = "bce"                 # loss registry key: bce | minimax | lsgan | hinge | wgan |
                                      # wgan-gp | dragan | acgan | rpgan (`ganforge list`)
    real_label: float = 1.0           # BCE target for real images; 0.9 = one-sided smoothing
    real_label_range: Optional[list[float]] = None  # noisy soft labels, e.g. [0.7, 1.2] (seed 000)
    fake_label_range: Optional[list[float]] = None  # e.g. [0.0, 0.3] (seed 000)
    n_critic: Optional[int] = None    # D steps per G step; None -> the loss's own (WGAN: 5, else 1)
    clip: float = 0.01                # wgan: critic weights are clipped to [-clip, clip]
    gp_weight: float = 10.0           # wgan-gp / dragan: gradient-penalty weight lambda
    dragan_noise: float = 0.5         # dragan: perturbation scale c (times the batch's std)
    class_weight: float = 1.0         # acgan: weight of the class loss in D's and G's objectives
    class_on_fake: bool = True        # acgan: D's class head also learns from fakes (the paper)
    pretrain_steps: int = 0           # acgan: D steps on real class labels before the GAN game
    # Convergence aids (any loss, any model; all off by default). README: "Convergence aids".
    r1_gamma: float = 0.0             # R1: gamma/2 * E|grad_x D(x)|^2 on reals; 0 = off
    r2_gamma: float = 0.0             # R2: the same on fakes; 0 = off (R3GAN = rpgan + R1 + R2)
    reg_every: int = 1                # R1/R2 every N D steps, multiplied by N (lazy; StyleGAN2: 16)
    augment: list[str] = field(default_factory=list)  # DiffAugment policies for D's inputs:
                                      # translation, cutout, color (translation,cutout); [] = off
    augment_p: Optional[float] = None  # per-sample probability; None: 1 (fixed) or 0 (ADA start)
    ada_target: Optional[float] = None  # ADA: target r_t = E[sign D(real)], e.g. 0.6; None: fixed
    ada_interval: int = 4             # ADA: D steps between updates of p
    ada_speed: float = 0.01           # ADA: p moves by this per 1,000 real images (0 -> 1 in 100k)
    lecam_weight: float = 0.0         # LeCam regulariser weight lambda (e.g. 0.3); 0 = off
    instance_noise: float = 0.0       # std of Gaussian noise on D's inputs at the start; 0 = off
    instance_noise_steps: int = 10_000  # D steps over which that std falls linearly to 0


@dataclass
class OptimConfig:
    name: str = "adam"                # "adam", "sgd" or "rmsprop"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam
    eps: float = 1e-8                 # Adam / RMSprop
    momentum: float = 0.0             # SGD / RMSprop; start value when momentum_final is set
    momentum_final: Optional[float] = None  # SGD: momentum rises linearly to this (cGAN paper)
    momentum_steps: int = 0           # ... over this many steps
    lr_decay: float = 1.0             # lr is divided by this every step (cGAN paper: 1.00004)
    lr_min: float = 0.0               # floor for the decayed lr (cGAN paper: 1e-6)


@dataclass
class TrainConfig:
    batch_size: int = 64
    steps: Optional[int] = None       # budget in generator steps ...
    epochs: Optional[float] = None    # ... or in passes over the data ...
    minutes: Optional[float] = None   # ... or in wall-clock minutes (--time-budget 5m)
    seed: int = 0
    device: str = "auto"              # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    threads: Optional[int] = None     # torch CPU threads; None keeps torch's default
    deterministic: bool = False       # deterministic kernels (slower; bit-exact on the CPU)
    on_nonfinite: str = "stop"        # NaN/Inf in a loss or weights: "stop" (with a diagnostic
                                      # snapshot) or "rollback" to the last good checkpoint
    rollback_lr_factor: float = 0.5   # rollback: learning rates are multiplied by this
    max_rollbacks: int = 3            # rollback: give up (stop) after this many
    ema: float = 0.0                  # decay of an EMA copy of G used for samples/metrics; 0 = off
    ema_start: int = 0                # G steps before the EMA starts averaging (copies G until)
    ema_half_life: Optional[float] = None  # EMA half-life in images (StyleGAN2-ADA: 10k); set,
                                      # it replaces train.ema's fixed decay
    ema_rampup: Optional[float] = None  # half-life <= this x images seen so far (e.g. 0.05)
    amp: str = "none"                 # mixed precision: "none", "bf16" (CUDA or CPU) or "fp16"
                                      # (CUDA, with a loss scaler per optimizer)
    channels_last: bool = False       # conv nets in channels_last memory format (faster convs)
    compile: bool = False             # torch.compile G and D (CUDA only)
    sync_batchnorm: bool = False      # torchrun: BatchNorm statistics over all ranks (CUDA)
    dist_backend: str = "auto"        # torchrun: "auto" (NCCL on CUDA, else gloo), nccl, gloo
    dist_timeout_s: float = 600.0     # torchrun: a rank silent this long stops the run
    checkpoint_minutes: Optional[float] = 10.0  # also checkpoint whenever this much wall time
                                      # passed since the last one, so a crash loses minutes
                                      # whatever the model's speed; none = by steps only


@dataclass
class LogConfig:
    log_every: int = 50               # steps between stats lines (JSONL, trackers)
    sample_every: int = 500           # steps between fixed-noise grids (also at each epoch end)
    checkpoint_every: int = 1000      # steps between checkpoints (also at the end)
    keep_checkpoints: int = 2         # how many recent checkpoints to keep
    grid_columns: int = 10            # samples per class row (conditional) / grid columns
    grid_samples: int = 100           # samples in an unconditional grid
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])  # experiment
                                      # trackers: tensorboard, mlflow, wandb ([] = none); the
                                      # old log.tensorboard=false still removes tensorboard
    progress: bool = True             # tqdm progress bar
    max_grid_frames: int = 40         # frames kept in samples.gif (every grid PNG is kept)
    report_every_s: Optional[float] = 300.0  # min seconds between report.html rebuilds while
                                      # training (and >= 10x the last rebuild's time); 0 = at
                                      # the end only; none = no report (`ganforge report RUN`)
    checkpoint_minutes: list[float] = field(default_factory=list)  # named checkpoints outside
                                      # the rotation when the training clock first passes each
                                      # value, e.g. [1, 2, 5] -> checkpoints/min_1, min_2, min_5


@dataclass
class EvalConfig:
    every: int = 0                    # steps between in-loop evaluations; 0 = off
    metrics: list[str] = field(default_factory=lambda: ["fid"])  # metric registry names
    samples: int = 2000               # fake samples per evaluation (fixed latents and labels)
    extractor: Optional[str] = None   # feature extractor; None -> "<dataset>-lenet"
    best: Optional[str] = None        # keep checkpoints/best.* by this metric, e.g. "fid"
    final: list[str] = field(default_factory=list)  # metrics scored on the final G when training
                                      # ends, as `ganforge evaluate RUN` does (into metrics.json)
    final_samples: int = 10_000       # samples for eval.final


@dataclass
class DiagnosticsConfig:
    """Thresholds of the training diagnostics (``reporting/diagnostics.py``); each fires once."""

    enabled: bool = True              # run the checks while training (console + diagnostics.jsonl)
    window_steps: int = 500           # a stats condition must hold this many steps (3+ lines)
    d_wins_real: float = 0.95         # "D wins": D(x) >= this ...
    d_wins_fake: float = 0.05         # ... and D(G(z)) <= this for window_steps
    class_ratio: float = 3.0          # ACGAN: class loss on reals > ratio x that on fakes ...
    class_gap: float = 0.05           # ... and above it by this much (nats) for window_steps
    collapse_ratio: float = 0.25      # mode collapse: fixed-noise diversity < this x its peak
                                      # and x the real data's
    entropy_ratio: float = 0.6        # ... or predicted-class entropy < this x its peak
    frozen_change: float = 1e-4       # G frozen: mean |change| of fixed-noise samples ([-1, 1])
    patience: int = 3                 # consecutive snapshots/evaluations for the two above


@dataclass
class Config:
    name: str = "custom"              # preset name (or "custom")
    description: str = ""             # one line shown by `ganforge list`
    reproduces: str = ""              # a document whose exact nets and settings the preset
                                      # keeps (e.g. "seed 002"); "" for the toolkit's own
                                      # presets, whose settings are tuned for speed/quality
    out_dir: str = "runs"             # run folders go under this
    run_name: Optional[str] = None    # None -> "<name>-<timestamp>"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# --------------------------------------------------------------------------------------------
# Typed assignment from nested dicts and "a.b=value" strings
# --------------------------------------------------------------------------------------------

def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _valid_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _unknown_key(key: str, obj: Any, prefix: str) -> ConfigError:
    valid = _valid_keys(obj, prefix)
    close = difflib.get_close_matches(prefix + key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{prefix}{key}'{hint}; valid keys: {', '.join(valid)}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` (from TOML, JSON or a parsed --set string) to the annotated type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        # TOML has no null: a file unsets an optional key (one its base preset set) with "none".
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]  # "--set model.g_hidden=256" means a one-layer list
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' wants a list, got {value!r}; "
                              f"write e.g. {key}=[1,2]")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # NaN slips past every range check, inf past most
                raise ConfigError(f"config key '{key}' is {value}; give a finite number")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if value is None:  # "--set model.d_norm=none" parses to None; the choice is "none"
            return "none"
    type_name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key '{key}' wants {type_name}, got {value!r}; fix the value")


def apply_dict(cfg: Config, values: dict[str, Any], source: str = "config") -> None:
    """Merge a nested dict (TOML/JSON layout) into ``cfg``, rejecting unknown keys."""

    def merge(obj: Any, vals: dict[str, Any], prefix: str) -> None:
        if isinstance(obj, LogConfig) and "tensorboard" in vals:
            vals = _legacy_tensorboard(obj, vals)
        hints = _field_types(type(obj))
        names = {f.name for f in dataclasses.fields(obj)}
        for key, value in vals.items():
            if key not in names:
                raise _unknown_key(key, obj, prefix)
            current = getattr(obj, key)
            if dataclasses.is_dataclass(current):
                if not isinstance(value, dict):
                    raise ConfigError(f"'{prefix}{key}' in {source} is a section; write [{prefix}{key}]")
                merge(current, value, f"{prefix}{key}.")
            else:
                setattr(obj, key, _coerce(value, hints[key], prefix + key))

    merge(cfg, values, "")


def _legacy_tensorboard(log: LogConfig, vals: dict[str, Any]) -> dict[str, Any]:
    """``log.tensorboard = true|false`` (saved configs and commands from before
    ``log.trackers``) as the ``log.trackers`` list with or without ``"tensorboard"``."""
    vals = dict(vals)
    flag = vals.pop("tensorboard")
    if not isinstance(flag, bool):
        raise ConfigError(f"config key 'log.tensorboard' wants true or false, got {flag!r}; "
                          "better, list the trackers: log.trackers=[tensorboard]")
    trackers = [t for t in _coerce(vals.get("trackers", log.trackers), list[str], "log.trackers")
                if t != "tensorboard"]
    vals["trackers"] = (["tensorboard"] + trackers) if flag else trackers
    return vals


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value``: JSON/TOML literals, else a string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):  # [fid,kid]: bare words, not JSON
        inner = stripped[1:-1].strip()
        return [parse_value(part.strip()) for part in inner.split(",")] if inner else []
    if "," in text:  # 128,256,512 -> list
        return [parse_value(part.strip()) for part in text.split(",")]
    return text


def apply_override(cfg: Config, assignment: str) -> None:
    """Apply one ``section.key=value`` override."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' has no '='; write e.g. --set optim.lr_g=1e-4")
    key, _, raw = assignment.partition("=")
    parts = key.strip().split(".")
    nested: dict[str, Any] = {}
    cursor = nested
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    value = parse_value(raw)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            _is_text_field(cfg, parts):
        value = raw.strip()  # run_name=2024 or data.root=123 name things; they are not numbers
    cursor[parts[-1]] = value
    apply_dict(cfg, nested, source=f"--set {assignment}")


def _is_text_field(cfg: Config, parts: list[str]) -> bool:
    """Whether ``a.b.c`` names a ``str`` or ``Optional[str]`` field (False if unknown)."""
    obj: Any = cfg
    for part in parts[:-1]:
        obj = getattr(obj, part, None)
        if not dataclasses.is_dataclass(obj):
            return False
    tp = _field_types(type(obj)).get(parts[-1])
    return tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                         and set(typing.get_args(tp)) == {str, type(None)})


# --------------------------------------------------------------------------------------------
# Presets and resolution
# --------------------------------------------------------------------------------------------

def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found; check the path") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file '{path}' is not valid TOML ({err}); fix the syntax") from None


def _preset_chain(name: str, seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise unknown_name("preset", name, list_presets())
    if name in seen:
        raise ConfigError(f"preset '{name}' includes itself through 'base'; remove the cycle")
    values = _read_toml(path)
    base = values.pop("base", None)
    chain = _preset_chain(base, seen + (name,)) if base else []
    values.setdefault("name", name)
    return chain + [values]


# A sign is matched so that "-5m" is named as a budget that is not positive, not as a typo.
TIME_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")


def parse_duration_minutes(text: str) -> float:
    """'90s' -> 1.5, '5m' -> 5, '2h' -> 120, '7' -> 7 (minutes).

    Raises:
        ConfigError: ``text`` is not a duration, or it is zero or negative.
    """
    m = TIME_RE.match(text)
    if not m:
        raise ConfigError(f"time budget '{text}' is not a duration; write e.g. 30s, 5m or 2h")
    number, unit = float(m.group(1)), (m.group(2) or "m")
    if number <= 0:
        raise ConfigError(f"time budget '{text.strip()}' must be positive; write e.g. 30s, 5m "
                          "or 2h")
    return number / 60 if unit in ("s", "sec") else number * 60 if unit == "h" else number


def resolve(
    preset: str | None = None,
    config_file: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Defaults ← preset chain ← config file ← overrides, then :func:`validate`."""
    cfg = Config()
    if preset:
        for layer in _preset_chain(preset):
            apply_dict(cfg, layer, source=f"preset {preset}")
        cfg.name = preset
    if config_file:
        layer = _read_toml(Path(config_file))
        if "base" in layer:
            for base_layer in _preset_chain(layer.pop("base")):
                apply_dict(cfg, base_layer, source=config_file)
        apply_dict(cfg, layer, source=config_file)
    apply_overrides(cfg, overrides)
    return cfg


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a saved (resolved) config, e.g. a run folder's config.json."""
    cfg = Config()
    apply_dict(cfg, values, source="saved config")
    validate(cfg)
    return cfg


BUDGET_KEYS = ("steps", "epochs", "minutes")  # train.*: the run stops at the first one reached


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """``cfg`` with ``section.key=value`` overrides applied, validated again (changed in place).

    A budget the overrides give (``train.steps``, ``train.epochs`` or ``train.minutes``, as
    ``--steps``, ``--epochs`` and ``--time-budget`` write them) replaces the budget of the preset
    or saved config instead of racing it: the budget keys the overrides leave out are unset.
    """
    given = set()
    for assignment in overrides:
        apply_override(cfg, assignment)
        key = assignment.partition("=")[0].strip()
        if key in {f"train.{k}" for k in BUDGET_KEYS} and getattr(cfg.train, key[6:]) is not None:
            given.add(key[6:])
    if given:
        for key in BUDGET_KEYS:
            if key not in given:
                setattr(cfg.train, key, None)
    validate(cfg)
    return cfg


def describe_budget(train: TrainConfig) -> str:
    """The effective budget in words, e.g. "5 minutes (train.minutes=5)"."""
    parts = []
    if train.steps is not None:
        parts.append(f"{train.steps} steps (train.steps)")
    if train.epochs is not None:
        parts.append(f"{train.epochs:g} epochs (train.epochs)")
    if train.minutes is not None:
        parts.append(f"{train.minutes:g} minutes (train.minutes)")
    if not parts:
        return "none: set --steps, --epochs or --time-budget"
    return parts[0] if len(parts) == 1 else " or ".join(parts) + ", whichever comes first"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, f"config key '{key}' is {value!r}; choose one of: {', '.join(choices)}")


def _check_aids(lo: LossConfig, m: ModelConfig) -> None:
    """Range checks of the convergence aids (policy names are checked when the loss is built)."""
    _check(lo.r1_gamma >= 0 and lo.r2_gamma >= 0,
           "loss.r1_gamma and loss.r2_gamma must be >= 0 (0 = off), e.g. 0.1")
    _check(lo.reg_every >= 1, "loss.reg_every must be >= 1 (1 = every D step), e.g. 4")
    _check(not ((lo.r1_gamma > 0 or lo.r2_gamma > 0) and m.d_norm == "batch"),
           "loss.r1_gamma/r2_gamma penalise per-sample gradients, which D's BatchNorm mixes "
           "across the batch; set model.d_norm=none or layer")
    augment = any(name.strip() for name in lo.augment)
    _check(lo.augment_p is None or 0.0 <= lo.augment_p <= 1.0,
           f"loss.augment_p={lo.augment_p} must be in [0, 1], e.g. 0.5 (none = default)")
    _check(lo.ada_target is None or 0.0 < lo.ada_target < 1.0,
           f"loss.ada_target={lo.ada_target} must be in (0, 1), e.g. 0.6 (none = fixed p)")
    _check(augment or (lo.augment_p is None and lo.ada_target is None),
           "loss.augment_p and loss.ada_target need augmentations; set e.g. "
           "loss.augment=translation,cutout")
    _check(lo.ada_interval >= 1, "loss.ada_interval must be >= 1 D step, e.g. 4")
    _check(lo.ada_speed > 0, "loss.ada_speed must be positive, e.g. 0.01 per 1,000 images")
    _check(lo.lecam_weight >= 0, "loss.lecam_weight must be >= 0 (0 = off), e.g. 0.3")
    _check(lo.instance_noise >= 0, "loss.instance_noise must be >= 0 (0 = off), e.g. 0.1")
    _check(lo.instance_noise_steps >= 1, "loss.instance_noise_steps must be >= 1, e.g. 10000")


def validate(cfg: Config) -> None:
    """Range and choice checks that do not need the registries (those run in :mod:`ganforge.api`)."""
    d, m, lo, o, t, g, e = cfg.data, cfg.model, cfg.loss, cfg.optim, cfg.train, cfg.log, cfg.eval
    _choice(d.split, "data.split", ("train", "test"))
    _choice(d.toy, "data.toy", ("8gaussians", "25gaussians", "swissroll", "ring-angle"))
    _choice(d.labels, "data.labels", ("class", "attributes"))
    _choice(d.bad_files, "data.bad_files", ("skip", "error"))
    _check(d.image_size is None or 4 <= d.image_size <= 1024,
           f"data.image_size={d.image_size} is out of range; use 8..1024 (e.g. 28, 32 or 64)")
    _check(d.channels in (None, 1, 3), f"data.channels={d.channels}; use 1, 3 or none")
    _check(d.limit is None or d.limit > 0, "data.limit must be positive; drop it to use all data")
    _check(d.classes is None or (len(d.classes) >= 2 and len(set(d.classes)) == len(d.classes)),
           "data.classes needs two or more different classes, e.g. [0,1,2,3,4], or none")
    _check(d.toy_samples > 0, "data.toy_samples must be positive")
    _check(m.z_dim > 0, f"model.z_dim={m.z_dim} must be positive; e.g. 100")
    _choice(m.z_dist, "model.z_dist", ("normal", "uniform"))
    _choice(m.g_norm, "model.g_norm", ("batch", "none"))
    _choice(m.d_norm, "model.d_norm", ("batch", "layer", "none"))
    _choice(m.init, "model.init", ("normal02", "xavier", "default"))
    _choice(m.d_label, "model.d_label", ("input", "projection", "classifier"))
    _check(m.d_fc >= 0, "model.d_fc must be >= 0 (0 = no hidden FC layer in D)")
    _check(m.d_mbstd == 0 or m.d_mbstd >= 2,
           f"model.d_mbstd={m.d_mbstd} must be 0 (off) or a group size >= 2, e.g. 4")
    _check(all(w > 0 for w in m.g_hidden + m.d_hidden) and m.g_width > 0 and m.d_width > 0,
           "model widths must be positive integers")
    for key in ("d_dropout", "g_dropout"):
        _check(0.0 <= getattr(m, key) < 1.0, f"model.{key} must be in [0, 1)")
    _check(m.embed_dim is None or m.embed_dim > 0, "model.embed_dim must be positive or none")
    for key in ("real_label_range", "fake_label_range"):
        rng = getattr(lo, key)
        _check(rng is None or (len(rng) == 2 and rng[0] <= rng[1]),
               f"loss.{key} must be [low, high] with low <= high, e.g. [0.7, 1.2]")
    _check(lo.n_critic is None or lo.n_critic >= 1, "loss.n_critic must be >= 1, e.g. 5")
    _check(lo.clip > 0, "loss.clip must be positive, e.g. 0.01")
    _check(lo.gp_weight >= 0, "loss.gp_weight must be >= 0, e.g. 10")
    _check(lo.dragan_noise > 0, "loss.dragan_noise must be positive, e.g. 0.5")
    _check(lo.class_weight >= 0, "loss.class_weight must be >= 0, e.g. 1")
    _check(lo.pretrain_steps >= 0, "loss.pretrain_steps must be >= 0 (0 = no pre-training)")
    _check_aids(lo, m)
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
    _check(e.best is None or e.every > 0, "eval.best needs in-loop metrics; set eval.every")
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
