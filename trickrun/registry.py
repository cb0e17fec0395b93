"""One tiny name -> object registry, used by every family of components.

Lookups fail loudly with the names that exist, so a typo in a config is caught at validation
time with the same message everywhere. A name may have aliases, the other names people know
it by (`xavier` for `glorot`); a config is normalised to the registered name when it is
resolved, so a saved config only ever holds registered names.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # alias -> registered name

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def add(obj: T) -> T:
            for new in (name, *aliases):
                if new in self._items or new in self._aliases:
                    raise ValueError(f"{self.kind} {new!r} registered twice")
            self._items[name] = obj
            self._aliases.update(dict.fromkeys(aliases, name))
            return obj

        return add

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def aliases(self) -> dict[str, str]:
        """Each alias and the registered name it stands for."""
        return dict(self._aliases)

    def canonical(self, name: str) -> str:
        """The registered name `name` stands for: itself, or the name it is an alias of."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        try:
            return self._items[self.canonical(name)]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._items)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items
