"""One small registry pattern for every plug-in kind: search strategies, metrics, feature networks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from magnet.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, added with `@REGISTRY.register("name")` and found with `REGISTRY.get`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
