"""What every setting is, from the declarations themselves: ``ganforge list --details NAME``
and the generated reference (``docs/reference/settings.md``, ``ganforge list --reference``).

Nothing here is written by hand about a setting: the names, types, defaults, rules and one-line
docs come from the dataclasses the sections and components declare (``ganforge.settings``), so
the reference cannot drift from the code — a test rebuilds ``docs/reference/settings.md`` and compares.
"""

from __future__ import annotations

import json
from typing import Any

from ganforge.config.components import SPECS
from ganforge.config.resolve import Config
from ganforge.errors import unknown_name
from ganforge.registry import AIDS, DATASETS, LOSSES, METRICS, MODELS, Registry
from ganforge.settings import SettingInfo, describe

FIXED = ("optim", "train", "log", "eval", "diagnostics")
# Where a component's own settings live in the config.
PREFIX = {"loss": "loss.", "convergence aid": "loss.", "model": "model.", "dataset": "data.",
          "metric": "eval.settings.{name}."}
SECTION_OF = {"loss": "loss", "model": "model", "dataset": "data"}
ORDER = [("dataset", DATASETS), ("model", MODELS), ("loss", LOSSES),
         ("convergence aid", AIDS), ("metric", METRICS)]


def _value(value: Any) -> str:
    return "none" if value is None else json.dumps(value) if not isinstance(value, str) \
        else f'"{value}"'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe in a doc would end the table cell


def _rows(infos: list[SettingInfo], prefix: str) -> list[str]:
    return [f"| `{prefix}{i.name}` | {i.type} | `{_value(i.default)}` | {_cell(i.rule)} | "
            f"{_cell(i.doc)} |" for i in infos]


def _table(infos: list[SettingInfo], prefix: str) -> list[str]:
    if not infos:
        return ["No settings of its own."]
    return ["| key | type | default | rule | what it does |", "|---|---|---|---|---|",
            *_rows(infos, prefix)]


def section_infos(section: str) -> list[SettingInfo]:
    """The settings of a section every run has (or the common part of a component section)."""
    if section in SPECS:
        return describe(SPECS[section].common)
    return describe(type(getattr(Config(), section)))


def component_infos(registry: Registry, name: str) -> list[SettingInfo]:
    return describe(registry.settings(name))


def _origin(registry: Registry, name: str) -> str:
    origin = registry.origin(name)
    return f" (plugin: {origin})" if origin else ""


def details(name: str) -> str:
    """``ganforge list --details NAME``: a component's (or a section's) settings, with their
    defaults, rules and docs, as plain text.

    Raises:
        ConfigError: ``name`` is neither a component nor a section (with the closest name).
    """
    blocks = []
    if name in FIXED or name in SPECS:
        infos = section_infos(name)
        label = "every " + SPECS[name].kind if name in SPECS else f"section {name}"
        blocks.append(_text_block(f"{name}: the settings of {label}", infos, f"{name}."))
    for kind, registry in ORDER:
        if name in registry:
            prefix = PREFIX[kind].format(name=name)
            title = f"{kind} {name}{_origin(registry, name)}: {registry.doc(name)}"
            block = _text_block(title, component_infos(registry, name), prefix)
            section = SECTION_OF.get(kind)
            if section:
                block += (f"\n  (and what every {SPECS[section].kind} takes: ganforge list "
                          f"--details {section})")
            blocks.append(block)
    if not blocks:
        known = sorted({n for _, reg in ORDER for n in reg.names()} | set(FIXED) | set(SPECS))
        raise unknown_name("name", name, known)
    return "\n\n".join(blocks)


def _text_block(title: str, infos: list[SettingInfo], prefix: str) -> str:
    lines = [title]
    if not infos:
        lines.append("  (no settings of its own)")
    width = max([len(prefix + i.name) for i in infos] + [0])
    for i in infos:
        rule = f"; {i.rule}" if i.rule else ""
        lines.append(f"  {prefix + i.name:{width}s}  {i.type} = {_value(i.default)}{rule}")
        lines.append(f"  {'':{width}s}  {i.doc}")
    return "\n".join(lines)


def reference_markdown(builtin_only: bool = False) -> str:
    """The reference of every setting, as markdown (``docs/reference/settings.md`` with
    ``builtin_only``: the components that ship with ganforge, not installed plugins)."""
    out = ["# Settings reference", "",
           "Generated from the declarations (`ganforge list --reference --builtin`); do not "
           "edit. `ganforge list --details NAME` prints one component's settings.", "",
           "## Every run", ""]
    for section in ("data", "model", "loss") + FIXED:
        kind = SPECS[section].kind if section in SPECS else None
        title = f"`{section}` (every {kind}; the chosen {kind} adds its own)" if kind \
            else f"`{section}`"
        out += [f"### {title}", "", *_table(section_infos(section), f"{section}."), ""]
    for kind, registry in ORDER:
        out += [f"## {kind.capitalize()}s", ""]
        for name in registry.names():
            if builtin_only and registry.origin(name):
                continue
            prefix = PREFIX[kind].format(name=name)
            out += [f"### {kind} `{name}`{_origin(registry, name)}", "", registry.doc(name), "",
                    *_table(component_infos(registry, name), prefix), ""]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["details", "reference_markdown", "section_infos", "component_infos"]
