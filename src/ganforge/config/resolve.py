"""The resolved config: :class:`Config`, and how it is made — defaults, then a preset (a TOML file
in ``configs/``, which may name a ``base`` preset), then a user TOML file, then ``--set``
overrides — and read back from a run's ``config.json``.

Every layer is a nested dict applied by :func:`apply_dict`: a component section
(``data``/``model``/``loss``) takes its chosen name first, then the keys that component has
(``components.py``); the other sections take their own keys. Unknown keys, wrong types and
out-of-range values raise :class:`~ganforge.errors.ConfigError` with the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ganforge.config.coerce import Raw, coerce, field_types, parse_value, unknown_key
from ganforge.config.components import SPECS, chosen_components, default_section, merge_section
from ganforge.config.sections import (DiagnosticsConfig, EvalConfig, LogConfig, OptimConfig,
                                      TrainConfig)
from ganforge.config.validate import validate
from ganforge.errors import ConfigError, unknown_name
from ganforge.settings import setting

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
BUDGET_KEYS = ("steps", "epochs", "minutes")  # train.*: the run stops at the first one reached
PLUGINS_KEY = "plugins"  # config.json: "kind:name" -> "package version" of plugin components


@dataclass
class Config:
    name: str = setting("custom", "preset name (or 'custom')")
    description: str = setting("", "one line shown by `ganforge list`")
    reproduces: str = setting("", "a document whose exact nets and settings the preset keeps "
                              "(e.g. 'seed 002'); '' for the toolkit's own presets")
    out_dir: str = setting("runs", "run folders go under this")
    run_name: Optional[str] = setting(None, "none -> '<name>-<timestamp>'")
    data: Any = field(default_factory=lambda: default_section("data"))
    model: Any = field(default_factory=lambda: default_section("model"))
    loss: Any = field(default_factory=lambda: default_section("loss"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    def to_dict(self) -> dict[str, Any]:
        """The settings as saved in ``config.json``; components that came from a plugin are
        listed under ``plugins`` with their package, so a run that needs one can name it."""
        values = dataclasses.asdict(self)
        # (A name no registry knows yet is refused when the run is built, not here.)
        plugins = {f"{registry.kind}:{name}": registry.origin(name)
                   for registry, name in chosen_components(self)
                   if name in registry and registry.origin(name)}
        if plugins:
            values[PLUGINS_KEY] = plugins
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# --------------------------------------------------------------------------------------------
# Layers: nested dicts (TOML, JSON) and "a.b=value" overrides
# --------------------------------------------------------------------------------------------

def apply_dict(cfg: Config, values: dict[str, Any], source: str = "config",
               saved: bool = False) -> None:
    """Merge a nested dict (TOML/JSON layout) into ``cfg``, rejecting unknown keys.

    Args:
        saved: ``values`` are a run's saved config, written by this or an earlier ganforge:
            settings of components the run did not use (older configs saved every key) are
            dropped, and a component that is missing is named with its plugin package.
    """
    values = dict(values)
    plugins = values.pop(PLUGINS_KEY, {}) if saved else {}
    top = {f.name for f in dataclasses.fields(cfg)}
    hints = field_types(type(cfg))
    for key, value in values.items():
        if key not in top:
            raise unknown_key(key, cfg, "")
        current = getattr(cfg, key)
        if key in SPECS:
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' in {source} is a section; write [{key}]")
            try:
                setattr(cfg, key, merge_section(key, current, value, source, saved))
            except ConfigError as err:
                raise _missing_plugin(key, value, plugins) or err from None
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' in {source} is a section; write [{key}]")
            _merge_fixed(current, value, f"{key}.", source)
        else:
            setattr(cfg, key, coerce(value, hints[key], key))


def _missing_plugin(section: str, values: dict[str, Any], plugins: dict[str, str]
                    ) -> Optional[ConfigError]:
    """The error for a saved config whose component came from a plugin that is not here."""
    spec = SPECS[section]
    name = values.get(spec.selector)
    name = name.parsed if isinstance(name, Raw) else name
    package = plugins.get(f"{spec.kind}:{name}")
    if package is None or name in spec.registry:
        return None
    dist = package.split()[0]
    return ConfigError(f"this run needs {spec.kind} '{name}' from the plugin package {package}, "
                       f"which is not installed here; pip install {dist}")


def _merge_fixed(obj: Any, vals: dict[str, Any], prefix: str, source: str) -> None:
    """Merge into a section with fixed keys (optim, train, log, eval, diagnostics)."""
    if isinstance(obj, LogConfig) and "tensorboard" in vals:
        vals = _legacy_tensorboard(obj, vals)
    hints = field_types(type(obj))
    for key, value in vals.items():
        if key not in hints:
            raise unknown_key(key, obj, prefix)
        current = getattr(obj, key)
        if isinstance(current, dict) and isinstance(value, dict):
            # A table of tables (eval.settings): a layer adds to it, key by key.
            value = {**current, **{k: {**current.get(k, {}), **v} if isinstance(v, dict) else v
                                   for k, v in value.items()}}
        elif isinstance(value, dict):
            raise ConfigError(f"'{prefix}{key}' in {source} is not a section; write "
                              f"{prefix}{key}=VALUE")
        setattr(obj, key, coerce(_plain(value) if isinstance(value, dict) else value,
                                 hints[key], prefix + key))


def _plain(value: Any) -> Any:
    """A nested table with the parsed ``--set`` values in it (typed later, by its owner)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.parsed if isinstance(value, Raw) else value


def _legacy_tensorboard(log: LogConfig, vals: dict[str, Any]) -> dict[str, Any]:
    """``log.tensorboard = true|false`` (saved configs and commands from before
    ``log.trackers``) as the ``log.trackers`` list with or without ``"tensorboard"``."""
    vals = dict(vals)
    flag = _plain(vals.pop("tensorboard"))
    if not isinstance(flag, bool):
        raise ConfigError(f"config key 'log.tensorboard' wants true or false, got {flag!r}; "
                          "better, list the trackers: log.trackers=[tensorboard]")
    trackers = [t for t in coerce(vals.get("trackers", log.trackers), list[str], "log.trackers")
                if t != "tensorboard"]
    vals["trackers"] = (["tensorboard"] + trackers) if flag else trackers
    return vals


def _nested(assignments: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "a.c=x"]`` as one layer ``{"a": {"b": Raw(1, "1"), "c": Raw("x", "x")}}``
    (a later assignment of the same key wins)."""
    nested: dict[str, Any] = {}
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"override '{assignment}' has no '='; write e.g. --set "
                              "optim.lr_g=1e-4")
        key, _, raw = assignment.partition("=")
        parts = key.strip().split(".")
        cursor = nested
        for part in parts[:-1]:
            nxt = cursor.setdefault(part, {})
            if not isinstance(nxt, dict):  # "a=1" then "a.b=2": the later one is a section
                nxt = cursor[part] = {}
            cursor = nxt
        cursor[parts[-1]] = Raw(parse_value(raw), raw)
    return nested


def apply_override(cfg: Config, assignment: str) -> None:
    """Apply one ``section.key=value`` override."""
    apply_dict(cfg, _nested([assignment]), source=f"--set {assignment}")


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """``cfg`` with ``section.key=value`` overrides applied, validated again (changed in place).

    The overrides are one layer: a component they choose (``loss.name=wgan``) is chosen before
    the keys they set for it, in whatever order they come. A budget the overrides give
    (``train.steps``, ``train.epochs`` or ``train.minutes``, as ``--steps``, ``--epochs`` and
    ``--time-budget`` write them) replaces the budget of the preset or saved config instead of
    racing it: the budget keys the overrides leave out are unset.
    """
    if overrides:
        apply_dict(cfg, _nested(overrides), source="--set " + " ".join(overrides))
    given = set()
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        if key in {f"train.{k}" for k in BUDGET_KEYS} and getattr(cfg.train, key[6:]) is not None:
            given.add(key[6:])
    if given:
        for key in BUDGET_KEYS:
            if key not in given:
                setattr(cfg.train, key, None)
    validate(cfg)
    return cfg


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


def preset_chain(name: str, seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The TOML layers of preset ``name``, its bases first."""
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise unknown_name("preset", name, list_presets())
    if name in seen:
        raise ConfigError(f"preset '{name}' includes itself through 'base'; remove the cycle")
    values = _read_toml(path)
    base = values.pop("base", None)
    chain = preset_chain(base, seen + (name,)) if base else []
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
        for layer in preset_chain(preset):
            apply_dict(cfg, layer, source=f"preset {preset}")
        cfg.name = preset
    if config_file:
        layer = _read_toml(Path(config_file))
        if "base" in layer:
            for base_layer in preset_chain(layer.pop("base")):
                apply_dict(cfg, base_layer, source=config_file)
        apply_dict(cfg, layer, source=config_file)
    apply_overrides(cfg, overrides)
    return cfg


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a saved (resolved) config, e.g. a run folder's config.json."""
    cfg = Config()
    apply_dict(cfg, values, source="saved config", saved=True)
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
