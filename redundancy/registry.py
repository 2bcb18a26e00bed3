"""One registry type for every plug-in kind (model families, models, tasks, search modes, demo recipes).

A plug-in module registers itself by name when imported; the rest of the code looks it up here. The rules are the
same for every kind: a name is registered once (a second registration is a bug, so it raises), and a lookup of
an unknown name raises `UnknownName` listing the valid names."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")


class UnknownName(ConfigError):
    """A name no plug-in of its kind registered (the message lists the registered names)."""


class Registry(Mapping[str, T]):
    """Plug-ins of one kind by name, in registration order (or by `order`); read like a dict, added to with `add`."""

    def __init__(self, kind: str, order: Callable[[T], float] | None = None):
        self.kind = kind  # what the names name, for messages: "model", "task", "search mode"
        self._order = order
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register `item` as `name`; a name already taken raises (two plug-ins claiming one name is a bug)."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice: {self._items[name]!r} and {item!r}")
        self._items[name] = item
        if self._order is not None:
            key = self._order
            self._items = dict(sorted(self._items.items(), key=lambda kv: key(kv[1])))
        return item

    @contextmanager
    def replaced(self, name: str, item: T) -> Iterator[T]:
        """`item` in place of the registered `name` while the block runs (a test's stand-in), then the original."""
        original = self[name]
        self._items[name] = item
        try:
            yield item
        finally:
            self._items[name] = original

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownName(f"unknown {self.kind} '{name}'; choose one of: {', '.join(self._items)}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str, default: T | None = None) -> T | None:  # type: ignore[override]
        """The item called `name`, or `default` (no error: for a name that may be another kind's)."""
        return self._items.get(name, default)

    def names(self) -> tuple[str, ...]:
        """What is registered, in order."""
        return tuple(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
