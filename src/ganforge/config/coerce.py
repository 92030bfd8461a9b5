"""Values into typed settings: ``--set`` text parsed, TOML/JSON values checked against a field's
annotation (int, float, bool, str, lists of them, optional), and the one-line errors for keys a
section does not have."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from typing import Any, Optional

from ganforge.errors import ConfigError


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every settable key of a section (dotted, with ``prefix``), nested sections expanded."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += valid_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def unknown_key(key: str, obj: Any, prefix: str, elsewhere: Optional[dict[str, str]] = None,
                chosen: str = "") -> ConfigError:
    """The one-line error for ``prefix + key``, which section ``obj`` does not have.

    Args:
        elsewhere: for a component section, the keys other components of its kind take and
            which ones take them (``{"model.g_width": "dcgan"}``): a key that belongs to
            another component is named as such, and close matches are sought there too.
        chosen: the component the section is for, e.g. "model 'mlp'".
    """
    valid = valid_keys(obj, prefix)
    elsewhere = {k: v for k, v in (elsewhere or {}).items() if k not in valid}
    full = prefix + key
    close = difflib.get_close_matches(full, valid, n=1) or difflib.get_close_matches(
        full, list(elsewhere), n=1)
    hint = ""
    if full in elsewhere:
        hint = f" (it is a setting of {elsewhere[full]})"
    elif close:
        owner = f" of {elsewhere[close[0]]}" if close[0] in elsewhere else ""
        hint = f" (did you mean '{close[0]}'{owner}?)"
    what = f" for {chosen}" if chosen else ""
    line = f"unknown config key '{full}'{what}{hint}; valid keys: {', '.join(valid)}"
    if elsewhere:
        others = ", ".join(f"{k} ({v})" for k, v in sorted(elsewhere.items()))
        line += f"; other choices take: {others}"
    return ConfigError(line)


@dataclasses.dataclass(frozen=True)
class Raw:
    """A ``--set`` value as parsed, with the text it was parsed from: a text field keeps the
    text ("run_name=2024", "data.root=123" name things; they are not numbers)."""

    parsed: Any
    text: str


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` (from TOML, JSON or a parsed --set string) to the annotated type."""
    if isinstance(value, Raw):
        numeric = isinstance(value.parsed, (int, float)) and not isinstance(value.parsed, bool)
        value = value.text.strip() if numeric and is_text_type(tp) else value.parsed
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        # TOML has no null: a file unsets an optional key (one its base preset set) with "none".
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return coerce(value, args[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]  # "--set model.g_hidden=256" means a one-layer list
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' wants a list, got {value!r}; "
                              f"write e.g. {key}=[1,2]")
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' wants a table, got {value!r}; write e.g. "
                              f"[{key}.NAME] in TOML or --set {key}.NAME.KEY=VALUE")
        _, item = typing.get_args(tp)
        return {str(k): coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
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


def is_text_type(tp: Any) -> bool:
    """``str`` or ``Optional[str]``: a field whose values name things, never numbers."""
    return tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                         and set(typing.get_args(tp)) == {str, type(None)})
