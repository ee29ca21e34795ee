"""A value that can be awaited until it satisfies a condition: events instead of polling loops.

The pool's state, its number of requests in flight and a model's waiting-for-load count are
`Watched`: whoever needs "ready", "drained" or "idle" awaits `wait_for` and is woken by the
`set` that makes it true, never by a timer that looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Watched(Generic[T]):
    def __init__(self, value: T) -> None:
        self._value = value
        self._changed: asyncio.Event | None = None  # made on first wait: set() costs nothing unwatched
        self.changed_at = time.monotonic()  # when the value last changed

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        if value == self._value:
            return
        self._value = value
        self.changed_at = time.monotonic()
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for(self, condition: Callable[[T], bool], timeout_s: float | None = None) -> T:
        """The value once `condition` holds, or the value when `timeout_s` runs out."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not condition(self._value):
            if self._changed is None:
                self._changed = asyncio.Event()
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self._value
