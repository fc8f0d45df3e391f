"""A mapping that forgets its least recently used entries past a size: what a worker keeps
per org id or per key (cached configs, remembered failures, breakers) must not grow with
every id a long-running worker has ever seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """Not thread-safe: its owners hold their own lock around it."""

    def __init__(self, limit: int, *, on_evict: Callable[[K, V], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("an Lru holds at least one entry")
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self._on_evict = on_evict

    def get(self, key: K) -> V | None:
        """The entry (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The entry, leaving its place alone."""
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            old, gone = self._items.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old, gone)

    def setdefault(self, key: K, value: V) -> V:
        found = self.get(key)
        if found is None:
            self.put(key, value)
            return value
        return found

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def keys(self) -> list[K]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
