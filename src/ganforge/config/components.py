"""Sections built from the chosen component: ``data``, ``model`` and ``loss``.

A component section holds the chosen name (``data.name``, ``model.arch``, ``loss.name``), the
settings every component of its kind takes (``sections.py``: ``DataCommon`` ...) and the chosen
component's own settings, as that component declares them (``Settings`` on a loss or an aid
class, ``settings=`` where a dataset or a model family registers). The loss section also holds
every convergence aid's settings: an aid works with any loss and is switched on by its own
values (``loss.r1_gamma=0.1``).

So ``loss.gp_weight`` exists when the loss is ``wgan-gp`` or ``dragan`` and nowhere else, and a
new loss with a setting of its own needs no edit here. The section's type is a dataclass made
once per (section, choice) (:func:`section_type`), so code reads ``cfg.loss.gp_weight`` as
before, and ``dataclasses.asdict`` saves exactly what the run used.

Choosing another component (a preset built on another, ``--set loss.name=wgan``) starts the
section again from the new component's defaults, keeping the values of the settings both have
(the common ones, the aids', a parent loss's).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any, Optional

from ganforge.config.coerce import coerce, field_types, unknown_key
from ganforge.config.sections import DataCommon, LossCommon, ModelCommon
from ganforge.errors import ConfigError
from ganforge.registry import AIDS, DATASETS, LOSSES, METRICS, MODELS, Registry
from ganforge.settings import DOC, check_values


@dataclass(frozen=True)
class SectionSpec:
    """How one component section is made.

    Attributes:
        section: its name in the config ("loss").
        selector: the key that names the component ("name", "arch").
        registry: where the components are registered.
        common: the settings every component of the kind takes.
        default: the component of a fresh config.
        extras: registries all of whose entries add their settings to the section (the aids).
    """

    section: str
    selector: str
    registry: Registry
    common: type
    default: str
    extras: tuple[Registry, ...] = ()

    @property
    def kind(self) -> str:
        return self.registry.kind


SPECS = {
    "data": SectionSpec("data", "name", DATASETS, DataCommon, "digits"),
    "model": SectionSpec("model", "arch", MODELS, ModelCommon, "mlp"),
    "loss": SectionSpec("loss", "name", LOSSES, LossCommon, "bce", (AIDS,)),
}


def _parts(spec: SectionSpec, choice: str) -> list[tuple[str, Optional[type]]]:
    """(owner, settings class) of a section, in the order its keys are listed."""
    parts = [("every " + spec.kind, spec.common),
             (f"{spec.kind} {choice}", spec.registry.settings(choice))]
    for extra in spec.extras:
        parts += [(f"{extra.kind} {name}", extra.settings(name)) for name in extra.names()]
    return parts


def _section_check(self: Any, prefix: str) -> None:
    """The cross-field checks each part of a section declares (``Settings.check``)."""
    for _, cls in type(self).__parts__:
        check = getattr(cls, "check", None) if cls is not None else None
        if callable(check):
            check(self, prefix)


@functools.lru_cache(maxsize=None)
def section_type(section: str, choice: str) -> type:
    """The dataclass of ``section`` when ``choice`` is chosen (made once, then reused).

    Raises:
        ConfigError: ``choice`` is no registered component (with the closest name).
    """
    spec = SPECS[section]
    parts = _parts(spec, choice)
    fields: list[tuple[str, Any, dataclasses.Field]] = [
        (spec.selector, str, dataclasses.field(
            default=choice, metadata={DOC: f"the {spec.kind} (`ganforge list`)"}))]
    owner: dict[str, str] = {spec.selector: "the section"}
    for label, cls in parts:
        if cls is None:
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in owner:  # a component must not redeclare a common key differently
                raise TypeError(f"{section}.{f.name} of {label} is already a setting of "
                                f"{owner[f.name]}; rename it")
            owner[f.name] = label
            kwargs: dict[str, Any] = {"metadata": f.metadata}
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                kwargs["default_factory"] = f.default_factory  # type: ignore[misc]
            else:
                kwargs["default"] = f.default
            fields.append((f.name, hints[f.name], dataclasses.field(**kwargs)))
    title = f"{section.capitalize()}Config[{choice}]"
    namespace = {"__parts__": tuple(parts), "check": _section_check}
    return dataclasses.make_dataclass(title, fields, namespace=namespace)


@functools.lru_cache(maxsize=None)
def other_keys(section: str, choice: str) -> dict[str, str]:
    """Keys other components of the section's kind take, with who takes them: a key that is
    not the chosen component's is then named as another's ("a setting of model dcgan").
    Made once per (section, choice), like the section's type; callers do not change it."""
    spec = SPECS[section]
    own = {f.name for f in dataclasses.fields(section_type(section, choice))}
    found: dict[str, list[str]] = {}
    for name in spec.registry.names():
        cls = spec.registry.settings(name)
        for f in dataclasses.fields(cls) if cls is not None else ():
            if f.name not in own:
                found.setdefault(f"{section}.{f.name}", []).append(name)
    return {k: f"{spec.kind} {', '.join(v)}" for k, v in found.items()}


def switch(section: str, current: Any, choice: str) -> Any:
    """``current`` as a section for ``choice``: the new component's defaults, with the values
    of the settings the two have in common carried over."""
    spec = SPECS[section]
    if getattr(current, spec.selector) == choice:
        return current
    new_type = section_type(section, choice)
    carried = {f.name: getattr(current, f.name) for f in dataclasses.fields(new_type)
               if f.name != spec.selector and hasattr(current, f.name)}
    return new_type(**carried)


def merge_section(section: str, current: Any, values: dict[str, Any], source: str,
                  saved: bool = False) -> Any:
    """``current`` with ``values`` (a TOML table, JSON object or parsed overrides) applied; the
    component named in ``values``, if any, is chosen first.

    Args:
        saved: ``values`` come from a run's saved config: keys of other components (which
            configs saved before components declared their settings held) are dropped.

    Raises:
        ConfigError: an unknown component, a key the chosen component does not take (named
            with the keys it does take), or a value of the wrong type.
    """
    spec = SPECS[section]
    values = dict(values)
    if spec.selector in values:
        choice = coerce(values.pop(spec.selector), str, f"{section}.{spec.selector}")
        current = switch(section, current, choice)
    chosen = getattr(current, spec.selector)
    hints = field_types(type(current))
    names = set(hints)
    update = {}
    for key, value in values.items():
        if key not in names:
            if saved and f"{section}.{key}" in other_keys(section, chosen):
                continue
            raise unknown_key(key, current, f"{section}.", other_keys(section, chosen),
                              f"{spec.kind} '{chosen}'")
        if isinstance(value, dict):
            raise ConfigError(f"'{section}.{key}' in {source} is not a section; write "
                              f"{section}.{key}=VALUE")
        update[key] = coerce(value, hints[key], f"{section}.{key}")
    return dataclasses.replace(current, **update) if update else current


def make_section(section: str, **values: Any) -> Any:
    """A section built from keyword values, e.g. ``LossConfig(name="wgan-gp", gp_weight=5)``."""
    spec = SPECS[section]
    fresh = section_type(section, values.get(spec.selector, spec.default))()
    section_obj = merge_section(section, fresh, values, "python")
    check_values(section_obj, f"{section}.")
    return section_obj


def DataConfig(**values: Any) -> Any:  # noqa: N802  (reads as the section's type)
    """The ``data`` section for ``values["name"]`` (default "digits")."""
    return make_section("data", **values)


def ModelConfig(**values: Any) -> Any:  # noqa: N802
    """The ``model`` section for ``values["arch"]`` (default "mlp")."""
    return make_section("model", **values)


def LossConfig(**values: Any) -> Any:  # noqa: N802
    """The ``loss`` section for ``values["name"]`` (default "bce")."""
    return make_section("loss", **values)


def default_section(section: str) -> Any:
    return section_type(section, SPECS[section].default)()


def chosen_components(cfg: Any) -> list[tuple[Registry, str]]:
    """(registry, name) of every component a config uses: its dataset, model family, loss, the
    aids its loss settings switch on, and its metrics."""
    chosen = [(DATASETS, cfg.data.name), (MODELS, cfg.model.arch), (LOSSES, cfg.loss.name)]
    for name in AIDS.names():
        aid = AIDS.get(name)
        if getattr(aid, "enabled", None) is not None and aid.enabled(cfg.loss):
            chosen.append((AIDS, name))
    for name in dict.fromkeys(list(cfg.eval.metrics) + list(cfg.eval.final)):
        chosen.append((METRICS, name))
    return chosen


def check_components(cfg: Any, data: Any = None,
                     kinds: Optional[tuple[Registry, ...]] = None) -> None:
    """Ask every chosen component whether it can work with this config (and, once loaded,
    this data): its ``check(cfg, data)``, through one interface.

    Args:
        kinds: only the components of these registries (default: all).
    """
    for registry, name in chosen_components(cfg):
        if kinds is not None and registry not in kinds:
            continue
        check = registry.check(name)
        if check is not None:
            check(cfg, data)


__all__ = ["SPECS", "SectionSpec", "DataConfig", "ModelConfig", "LossConfig", "section_type",
           "merge_section", "make_section", "default_section", "switch",
           "other_keys", "chosen_components", "check_components"]
