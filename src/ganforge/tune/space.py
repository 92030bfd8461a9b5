"""The search space: ``KEY=DIST:ARGS`` parameters, typed by the key's declared type and checked
by the config itself before any trial runs.

Four distributions (:data:`DISTRIBUTIONS`), each a parser of its arguments and a way to draw
from an Optuna trial::

    optim.lr_g=loguniform:1e-4:2e-3     a float, uniform in log space
    loss.r1_gamma=uniform:0:1           a float
    model.z_dim=int:16:128              an integer, both ends included
    model.d_width=choice:16,32,48       one of the values, typed by the key (lists: [64,64],[128])

A key is any config key. It is checked by resolving the preset with it (so an unknown key gets
the config's own "did you mean"), and a range by resolving the preset with each bound (so a rule
such as ``loss.r1_gamma >= 0`` refuses ``uniform:-1:1``). Every refusal is one line naming the
parameter as given.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ganforge.config import Config, resolve
from ganforge.errors import ConfigError, unknown_name

# Keys ``tune`` sets for every run (budget, seed, the metric's evaluation): neither searched
# nor fixed by ``--set``.
RESERVED = ("train.seed", "train.steps", "train.epochs", "train.minutes", "eval.every",
            "eval.minutes", "eval.metrics", "eval.samples", "eval.final", "eval.final_samples",
            "eval.best")
EXAMPLE = "optim.lr_g=loguniform:1e-4:2e-3"


@dataclass(frozen=True)
class Param:
    """One searched key.

    Attributes:
        key: the config key, e.g. "optim.lr_g".
        dist: the distribution's name (a key of :data:`DISTRIBUTIONS`).
        low, high: the range (uniform, loguniform, int); None for a choice.
        choices: a choice's values, typed by the key (lists kept as their text).
        spec: the parameter as the user wrote it (``KEY=DIST:ARGS``).
    """

    key: str
    dist: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: tuple[Any, ...] = ()
    spec: str = ""

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an Optuna ``trial`` (drawn, or the trial's own)."""
        return DISTRIBUTIONS[self.dist].suggest(trial, self)

    def override(self, value: Any) -> str:
        """``value`` as a ``--set`` override."""
        return f"{self.key}={as_text(value)}"


@dataclass(frozen=True)
class Distribution:
    """How one distribution parses its arguments and draws a value.

    Attributes:
        parse: ``(args text, key type) -> Param fields`` (low/high or choices).
        suggest: ``(trial, param) -> value``.
        form: the arguments, as shown in errors ("A:B").
    """

    parse: Callable[[str, Any], dict[str, Any]]
    suggest: Callable[[Any, Param], Any]
    form: str


def as_text(value: Any) -> str:
    """A value as ``--set`` writes it: numbers exactly, ``none``, ``true``/``false``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _range(args: str, kind: type) -> dict[str, Any]:
    parts = args.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = (kind(p) for p in parts)
    except ValueError:
        raise ConfigError(f"wants two {'integers' if kind is int else 'numbers'} A:B") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"wants A < B, got {low!r} and {high!r}")
    return {"low": low, "high": high}


def _float_range(args: str, key_type: Any) -> dict[str, Any]:
    if key_type not in (float, Any):
        raise ConfigError(f"the key takes {_type_name(key_type)}; use "
                          f"{'int:A:B or ' if key_type is int else ''}choice:X,Y,...")
    return _range(args, float)


def _log_range(args: str, key_type: Any) -> dict[str, Any]:
    values = _float_range(args, key_type)
    if values["low"] <= 0:
        raise ConfigError("loguniform wants 0 < A < B")
    return values


def _int_range(args: str, key_type: Any) -> dict[str, Any]:
    if key_type not in (int, float, Any):
        raise ConfigError(f"the key takes {_type_name(key_type)}; use choice:X,Y,...")
    return _range(args, int)


def _choice(args: str, key_type: Any) -> dict[str, Any]:
    values = split_top_level(args)
    if len(values) < 2 or any(not v for v in values) or len(set(values)) < len(values):
        raise ConfigError("wants two or more different values X,Y,... (fix one with --set)")
    return {"choices": tuple(values)}  # typed by the config in check_param


DISTRIBUTIONS: dict[str, Distribution] = {
    "uniform": Distribution(_float_range, lambda t, p: t.suggest_float(p.key, p.low, p.high),
                            "A:B"),
    "loguniform": Distribution(
        _log_range, lambda t, p: t.suggest_float(p.key, p.low, p.high, log=True), "A:B"),
    "int": Distribution(_int_range, lambda t, p: t.suggest_int(p.key, int(p.low), int(p.high)),
                        "A:B"),
    "choice": Distribution(_choice, lambda t, p: t.suggest_categorical(p.key, list(p.choices)),
                           "X,Y,..."),
}


def split_top_level(text: str) -> list[str]:
    """``"[64,64],[128],7"`` -> ``["[64,64]", "[128]", "7"]``: commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return parts + [current.strip()]


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is not None:  # list[int]
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", None) or str(tp)


def declared_type(cfg: Config, key: str) -> Any:
    """The declared type of ``key`` in ``cfg`` (``Optional[X]`` as X; an entry of a table such
    as ``eval.settings``: Any), or None when ``cfg`` has no such key."""
    *path, leaf = key.split(".")
    obj: Any = cfg
    for part in path:
        if isinstance(obj, dict):
            return Any  # eval.settings.<metric>.<key>: typed by the metric, checked on resolve
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if isinstance(obj, dict):
        return Any
    tp = typing.get_type_hints(type(obj)).get(leaf)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _value_of(cfg: Config, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def parse_param(spec: str) -> Param:
    """``KEY=DIST:ARGS`` as a :class:`Param` whose choices are still text (see
    :func:`check_param`).

    Raises:
        ConfigError: the form, the distribution or its arguments are wrong (one line).
    """
    key, sep, rest = spec.partition("=")
    dist, colon, args = rest.partition(":")
    key, dist = key.strip(), dist.strip()
    if not sep or not key or not colon:
        raise ConfigError(f"--param {spec!r} is not KEY=DIST:ARGS; write e.g. --param {EXAMPLE}")
    if dist not in DISTRIBUTIONS:
        unknown = unknown_name("distribution", dist, list(DISTRIBUTIONS))
        raise ConfigError(f"--param {spec}: {unknown}")
    if key in RESERVED:
        raise ConfigError(f"--param {spec}: tune sets {key} for every run; search another key")
    return Param(key=key, dist=dist, spec=spec.strip())


def check_param(param: Param, preset: str, base: list[str]) -> Param:
    """``param`` checked against the config: its key, its arguments against the key's type,
    and each bound (or choice) resolved with the preset and ``base`` overrides; choices come
    back typed by the key.

    Raises:
        ConfigError: one line: ``--param SPEC: <what the config or the distribution says>``.
    """
    where = f"--param {param.spec}"
    dist = DISTRIBUTIONS[param.dist]
    args = param.spec.partition("=")[2].partition(":")[2]
    try:
        dist.parse(args, Any)  # the arguments' form first, then the key and its type
        key_type = declared_type(resolve(preset, overrides=base), param.key)
        if key_type is None:  # the config names it: unknown (did you mean), or another's
            probe = split_top_level(args)[0] if param.dist == "choice" else args.split(":")[0]
            key_type = declared_type(resolve(preset, overrides=base + [f"{param.key}={probe}"]),
                                     param.key) or Any
        fields = dist.parse(args, key_type)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    checked = Param(key=param.key, dist=param.dist, spec=param.spec, **fields)
    values = checked.choices or (checked.low, checked.high)
    typed = []
    for value in values:
        text = as_text(value) if not isinstance(value, str) else value
        try:
            resolved = _value_of(resolve(preset, overrides=base + [f"{param.key}={text}"]),
                                 param.key)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        # Optuna keeps scalars; a list (model.g_hidden) is kept as its text.
        typed.append(resolved if isinstance(resolved, (int, float, str, bool, type(None)))
                     else text)
    if checked.choices:
        checked = Param(key=param.key, dist=param.dist, spec=param.spec, choices=tuple(typed))
    return checked


def read_space(path: str) -> list[str]:
    """The parameters of a space file: a TOML ``[params]`` table of ``KEY = "DIST:ARGS"``
    (dotted keys may be nested tables), as ``KEY=DIST:ARGS`` specs.

    Raises:
        ConfigError: the file is missing, not TOML, or holds something else.
    """
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"space file '{path}' not found; check the path") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"space file '{path}' is not valid TOML ({err}); fix the "
                          "syntax") from None
    params = values.pop("params", None)
    if values or not isinstance(params, dict) or not params:
        raise ConfigError(f"space file '{path}' must hold one [params] table of "
                          f"KEY = \"DIST:ARGS\", e.g. \"optim.lr_g\" = \"loguniform:1e-4:2e-3\"")
    specs = []
    for key, spec in _flatten(params).items():
        if not isinstance(spec, str):
            raise ConfigError(f"space file '{path}': {key} = {spec!r} is not a \"DIST:ARGS\" "
                              "string; write e.g. \"choice:16,32\"")
        specs.append(f"{key}={spec}")
    return specs


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        flat.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def build_space(specs: list[str], preset: str, fixed: list[str], base: list[str]
                ) -> list[Param]:
    """Every parameter parsed and checked, in order; a key searched twice, or searched and
    fixed by ``--set``, is refused.

    Args:
        specs: ``KEY=DIST:ARGS`` from ``--param`` and the space file.
        preset: the preset the study tunes.
        fixed: the ``--set`` overrides every trial gets.
        base: every override a trial gets besides its parameters (``fixed`` included).
    """
    if not specs:
        raise ConfigError(f"nothing to search; give --param KEY=DIST:ARGS (e.g. {EXAMPLE}) or "
                          "--space FILE.toml")
    params = [parse_param(spec) for spec in specs]
    fixed_keys = {o.partition("=")[0].strip() for o in fixed}
    seen: set[str] = set()
    for param in params:
        if param.key in seen:
            raise ConfigError(f"--param {param.spec}: {param.key} is searched twice; keep one")
        if param.key in fixed_keys:
            raise ConfigError(f"--param {param.spec}: {param.key} is also fixed by --set; drop "
                              "one of them")
        seen.add(param.key)
    return [check_param(param, preset, base) for param in params]
