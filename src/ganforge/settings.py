"""Typed settings, declared by the component that uses them.

A loss, aid, model family, dataset or metric declares its options as a dataclass whose fields
are made with :func:`setting`: a default, a one-line doc and the rule a value must follow::

    @dataclass
    class Settings(GANLoss.Settings):
        gp_weight: float = setting(10.0, "weight lambda of the gradient penalty",
                                   check=at_least(0), example="10")

The config (``ganforge.config``) builds each section from the chosen component's declaration, so
``--set loss.gp_weight=5`` reaches exactly that field, with its type and its check, and a key
the component does not have is refused with the keys it has. ``ganforge list --details NAME``
and the generated reference (``docs/reference/settings.md``) read the same declarations.

A rule (:class:`Rule`) knows its words ("must be >= 0") so that docs and errors say the same
thing. A settings class may add a method ``check(self, prefix)`` for rules that tie several of
its fields together; checks against the rest of the config belong to the component's
``check_config(cfg, data)``.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ganforge.errors import ConfigError

DOC, RULE, EXAMPLE, MESSAGE, TO = "doc", "rule", "example", "message", "to"


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy: ``test(value)`` and the words for it ("positive").

    ``message`` is the error when a rule has its own way of saying it (a choice lists the
    choices); ``{key}`` and ``{value}`` are filled in.
    """

    test: Callable[[Any], bool]
    words: str
    message: Optional[str] = None

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))


def positive() -> Rule:
    return Rule(lambda v: v > 0, "positive")


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low:g}")


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Rule:
    """``low <= v <= high`` with either end open: ``between(0, 1, high_open=True)`` is [0, 1)."""
    def test(v: Any) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below
    words = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return Rule(test, words)


def one_of(*choices: Any) -> Rule:
    listed = ", ".join("none" if c is None else str(c) for c in choices)
    return Rule(lambda v: v in choices, f"one of: {listed}",
                "config key '{key}' is {value!r}; choose one of: " + listed)


def each(rule: Rule) -> Rule:
    """Every item of a list follows ``rule``."""
    return Rule(lambda v: all(rule(item) for item in v), f"all {rule.words}")


def routed(obj: Any) -> dict[str, dict[str, Any]]:
    """The values of ``obj``'s settings declared with ``to=``, by net and argument:
    ``{"generator": {"hidden": [...]}, "discriminator": {...}}`` (lists copied)."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        for route in f.metadata.get(TO, ()):
            net, arg = route.split(".", 1)
            out.setdefault(net, {})[arg] = list(value) if isinstance(value, list) else value
    return out


def optional(rule: Rule) -> Rule:
    """None (unset) or a value that follows ``rule``."""
    return Rule(lambda v: v is None or rule(v), f"none or {rule.words}")


def setting(default: Any, doc: str, *, check: Optional[Rule] = None,
            example: Optional[str] = None, message: Optional[str] = None,
            to: str | tuple[str, ...] = ()) -> Any:
    """A declared setting: a dataclass field carrying its doc and its rule.

    Args:
        default: the value when nothing sets it (lists and dicts are copied per instance).
        doc: one line for ``ganforge list --details`` and the reference.
        check: the rule every value must follow (checked when the config is resolved).
        example: a good value, shown in the error ("e.g. 10").
        message: the whole error instead of the rule's words; ``{key}`` and ``{value}`` are
            filled in (for messages users already know).
        to: where a model family's setting goes: the constructor argument(s) of its nets,
            e.g. "discriminator.hidden" or ("generator.init", "discriminator.init").
    """
    routes = (to,) if isinstance(to, str) else tuple(to)
    metadata = {DOC: doc, RULE: check, EXAMPLE: example, MESSAGE: message, TO: routes}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SettingInfo:
    """One declared setting as the docs show it."""

    name: str
    type: str
    default: Any
    doc: str
    rule: str


def type_name(tp: Any) -> str:
    """A readable name for an annotation: ``Optional[list[int]]`` -> "list[int] or none"."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in inner) + " or none"
    if origin is list:
        return f"list[{type_name(args[0])}]" if args else "list"
    return getattr(tp, "__name__", str(tp))


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def describe(cls: Optional[type], skip: Sequence[str] = ()) -> list[SettingInfo]:
    """The declared settings of a settings dataclass, in declaration order."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        rule = f.metadata.get(RULE)
        infos.append(SettingInfo(f.name, type_name(hints[f.name]), default_of(f),
                                 f.metadata.get(DOC, ""), rule.words if rule else ""))
    return infos


def check_values(obj: Any, prefix: str) -> None:
    """Every field of ``obj`` that declares a rule follows it, then ``obj.check(prefix)``.

    Raises:
        ConfigError: the first value that breaks its rule, as ``loss.gp_weight=-1 must be
            >= 0, e.g. 10``.
    """
    for f in dataclasses.fields(obj):
        rule = f.metadata.get(RULE)
        value = getattr(obj, f.name)
        if rule is None or rule(value):
            continue
        key = f"{prefix}{f.name}"
        message = f.metadata.get(MESSAGE) or rule.message
        if message:
            raise ConfigError(message.format(key=key, value=value))
        example = f.metadata.get(EXAMPLE)
        raise ConfigError(f"{key}={value!r} must be {rule.words}"
                          + (f", e.g. {example}" if example else ""))
    check = getattr(obj, "check", None)
    if callable(check):
        check(prefix)
