"""Requests waiting for a free slot: a FIFO bounded in length and in waiting time.

Keeping waiting work here, in the API process, rather than in worker pipes keeps
it cancellable and countable (the lesson of concurrent.futures' short call queue):
a client that leaves is simply removed, and the queue depth is a real number for
metrics and autoscaling.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from warmserve.generation import GenerationRequest
from warmserve.pool.messages import Submit
from warmserve.pool.stream import RequestStream


@dataclass
class Queued:
    stream: RequestStream
    message: Submit
    resumed: bool = False  # its worker died: it continues on the next free worker, ahead of new requests
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class WaitingQueue:
    def __init__(self, timeout_s: float, on_timeout: Callable[[Queued], None]) -> None:
        self._items: OrderedDict[str, Queued] = OrderedDict()
        self._timeout_s = timeout_s
        self._on_timeout = on_timeout

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Queued) -> None:
        """At the back, or at the front for a resumed request (it was admitted before any waiting one)."""
        item.timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire, item.stream.request_id)
        self._items[item.stream.request_id] = item
        if item.resumed:
            self._items.move_to_end(item.stream.request_id, last=False)

    def peek(self) -> GenerationRequest | None:
        """The request `pop` would return next, or None."""
        return next((item.message.request for item in self._items.values()), None)

    def pop(self) -> Queued | None:
        """The oldest waiting request, or None."""
        if not self._items:
            return None
        _, item = self._items.popitem(last=False)
        self._disarm(item)
        return item

    def remove(self, request_id: str) -> bool:
        item = self._items.pop(request_id, None)
        if item is None:
            return False
        self._disarm(item)
        return True

    def drain(self) -> list[Queued]:
        items = list(self._items.values())
        self._items.clear()
        for item in items:
            self._disarm(item)
        return items

    def _expire(self, request_id: str) -> None:
        item = self._items.pop(request_id, None)
        if item is not None:
            self._on_timeout(item)

    @staticmethod
    def _disarm(item: Queued) -> None:
        if item.timer is not None:
            item.timer.cancel()
