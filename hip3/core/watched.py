"""A value that tasks can wait on: the current state, and a way to sleep until it satisfies a predicate.

Used for connection state, readiness and latches. Every change wakes the waiters, who re-check their
predicate against the value as it is when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Watched(Generic[T]):
    def __init__(self, value: T) -> None:
        self._value = value
        self._changed = trio.Event()

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        if value == self._value:
            return
        self._value = value
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[T], bool]) -> T:
        """Return the first value, current or future, for which `predicate` holds."""
        while not predicate(self._value):
            await self._changed.wait()
        await trio.lowlevel.checkpoint()
        return self._value

    async def wait_change(self) -> T:
        """Return the next value the watched thing takes."""
        await self._changed.wait()
        return self._value
