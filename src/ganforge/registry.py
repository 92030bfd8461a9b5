"""The registries: one small helper, and the five tables of components a config chooses from.

Entries register themselves by decorator where they are defined, and every lookup of an unknown
name fails at once with the closest valid name ("did you mean") and the list of valid names. An
entry may declare about itself what code outside it reads instead of an if-chain over names:
``info`` (what a dataset reads from its root), its typed ``settings`` (a dataclass of the
options it takes, ``ganforge.settings``) and a ``check`` of the whole config (what it cannot
work with).

The five component registries — :data:`LOSSES`, :data:`AIDS`, :data:`MODELS`,
:data:`DATASETS`, :data:`METRICS` — live here, below every room that fills them, so that the
config can resolve a component's settings by name. They fill themselves on the first lookup:
the built-in modules are imported, then every entry point of the registry's group
(``ganforge.losses``, ...), the way a third-party package adds its components
(``[project.entry-points."ganforge.losses"] mine = "my_package.loss"`` in its
``pyproject.toml``). A plugin's entry remembers the package it came from, so a run that needs a
plugin which is not installed can say which.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from ganforge.errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object table with helpful errors, optionally filled on first use.

    Args:
        kind: what the entries are ("model", "loss", "dataset"), used in error messages.
        group: the entry-point group third-party packages register under, e.g.
            "ganforge.losses"; None: no plugins.
        builtins: modules whose import registers the built-in entries (imported on the first
            lookup, so that a table below the rooms it lists never imports them itself).
    """

    def __init__(self, kind: str, group: Optional[str] = None,
                 builtins: tuple[str, ...] = ()) -> None:
        self.kind, self.group, self.builtins = kind, group, builtins
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        self._info: dict[str, Any] = {}
        self._settings: dict[str, Optional[type]] = {}
        self._checks: dict[str, Optional[Callable[..., None]]] = {}
        self._origin: dict[str, Optional[str]] = {}
        self._broken: dict[str, str] = {}  # entry-point name -> why its package failed to load
        self._loading_from: Optional[str] = None
        self._state = "empty" if (group or builtins) else "loaded"

    # ------------------------------------------------------------------ filling it
    def register(self, name: str, doc: str | None = None, info: Any = None,
                 settings: Optional[type] = None, check: Optional[Callable[..., None]] = None
                 ) -> Callable[[T], T]:
        """Decorator that stores ``obj`` under ``name`` (names are unique).

        Args:
            name: the name users type.
            doc: the one-line description for ``ganforge list`` (default: the docstring's).
            info: what the entry declares about itself for others to read (see :meth:`info`).
            settings: the dataclass of the entry's own options (default: ``obj.Settings``
                when it has one); see :mod:`ganforge.settings`.
            check: ``check(cfg, data)`` refusing configs the entry cannot work with (default:
                ``obj.check_config`` when it has one); ``data`` is None before the data loads.
        """

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            self._info[name] = info
            self._settings[name] = settings if settings is not None else getattr(
                obj, "Settings", None)
            self._checks[name] = check if check is not None else getattr(
                obj, "check_config", None)
            self._origin[name] = self._loading_from
            text = doc if doc is not None else (getattr(obj, "__doc__", None) or "")
            self._docs[name] = text.strip().splitlines()[0] if text.strip() else ""
            return obj

        return deco

    def _load(self) -> None:
        """Import the built-in modules, then every plugin of the group (once)."""
        if self._state != "empty":
            return  # loaded, or loading: a lookup while a module registers sees what is there
        self._state = "loading"
        try:
            for module in self.builtins:
                importlib.import_module(module)
            if self.group:
                for point in importlib.metadata.entry_points(group=self.group):
                    self._load_plugin(point)
        finally:
            self._state = "loaded"

    def _load_plugin(self, point: importlib.metadata.EntryPoint) -> None:
        dist = getattr(point, "dist", None)
        package = f"{dist.name} {dist.version}" if dist is not None else point.value
        self._loading_from = package
        try:
            obj = point.load()
        except Exception as err:  # a broken plugin must not break the built-ins; named on use
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self._broken[point.name] = (f"{self.kind} '{point.name}' comes from the package "
                                        f"{package}, which failed to load "
                                        f"({type(err).__name__}: {first}); reinstall or fix it")
            return
        finally:
            self._loading_from = None
        # An entry point may name the module that registers (any number of entries by
        # decorator) or the object itself, registered under the entry point's name.
        if point.name not in self._entries and not isinstance(obj, type(importlib)):
            self._loading_from = package
            try:
                self.register(point.name)(obj)
            finally:
                self._loading_from = None

    # ------------------------------------------------------------------ reading it
    def get(self, name: str) -> T:
        """Return the entry called ``name``, or raise a ConfigError with the closest valid name
        and the list of valid names (or why the plugin that provides it did not load)."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            if name in self._broken:
                raise ConfigError(self._broken[name]) from None
            raise unknown_name(self.kind, name, self.names()) from None

    def info(self, name: str) -> Optional[Any]:
        """What the entry ``name`` declared when it registered (None when it declared nothing)."""
        self.get(name)
        return self._info[name]

    def settings(self, name: str) -> Optional[type]:
        """The dataclass of the entry's own settings, or None when it takes none."""
        self.get(name)
        return self._settings[name]

    def check(self, name: str) -> Optional[Callable[..., None]]:
        """The entry's ``check(cfg, data)``, or None."""
        self.get(name)
        return self._checks[name]

    def origin(self, name: str) -> Optional[str]:
        """"package version" of the plugin that registered ``name``; None for a built-in."""
        self.get(name)
        return self._origin[name]

    def broken(self) -> dict[str, str]:
        """Entry-point names whose package failed to load, and why (for ``ganforge list``)."""
        self._load()
        return dict(self._broken)

    def doc(self, name: str) -> str:
        """First line of the entry's docstring (for ``ganforge list``)."""
        self.get(name)
        return self._docs[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


# The components a config chooses by name. Their types live in the rooms that fill them (a
# GANLoss subclass, an Aid subclass, a ModelSpec, a dataset builder, a metric function).
LOSSES: Registry[Any] = Registry("loss", "ganforge.losses", ("ganforge.losses",))
AIDS: Registry[Any] = Registry("convergence aid", "ganforge.aids", ("ganforge.losses.aids",))
MODELS: Registry[Any] = Registry("model", "ganforge.models", ("ganforge.models",))
DATASETS: Registry[Any] = Registry("dataset", "ganforge.datasets", ("ganforge.data",))
METRICS: Registry[Any] = Registry("metric", "ganforge.metrics", ("ganforge.metrics",))
COMPONENTS = {"loss": LOSSES, "aid": AIDS, "model": MODELS, "dataset": DATASETS,
              "metric": METRICS}
