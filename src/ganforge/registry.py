"""One small registry helper shared by models, losses, datasets and (later) metrics.

Entries register themselves by decorator where they are defined; the CLI imports the packages
and every lookup of an unknown name fails at once with the list of valid names.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from ganforge.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object table with helpful errors.

    Args:
        kind: what the entries are ("model", "loss", "dataset"), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str | None = None) -> Callable[[T], T]:
        """Decorator that stores ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            text = doc if doc is not None else (getattr(obj, "__doc__", None) or "")
            self._docs[name] = text.strip().splitlines()[0] if text.strip() else ""
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise a ConfigError listing the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'; valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def doc(self, name: str) -> str:
        """First line of the entry's docstring (for ``ganforge list``)."""
        self.get(name)
        return self._docs[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
