"""One small registry helper shared by models, losses, datasets, metrics and the rest.

Entries register themselves by decorator where they are defined; the CLI imports the packages
and every lookup of an unknown name fails at once with the closest valid name ("did you mean")
and the list of valid names. An entry may also declare something about itself (``info``) that
code outside it reads, instead of an if-chain over names (what a dataset reads from its root).
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from ganforge.errors import unknown_name

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
        self._info: dict[str, Any] = {}

    def register(self, name: str, doc: str | None = None, info: Any = None
                 ) -> Callable[[T], T]:
        """Decorator that stores ``obj`` under ``name`` (names are unique).

        Args:
            name: the name users type.
            doc: the one-line description for ``ganforge list`` (default: the docstring's).
            info: what the entry declares about itself for others to read (see :meth:`info`).
        """

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            self._info[name] = info
            text = doc if doc is not None else (getattr(obj, "__doc__", None) or "")
            self._docs[name] = text.strip().splitlines()[0] if text.strip() else ""
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the entry called ``name``, or raise a ConfigError with the closest valid name
        and the list of valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise unknown_name(self.kind, name, self.names()) from None

    def info(self, name: str) -> Optional[Any]:
        """What the entry ``name`` declared when it registered (None when it declared nothing)."""
        self.get(name)
        return self._info[name]

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
