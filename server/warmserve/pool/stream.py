"""The API side of one request in flight: its events, in order, and its cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from warmserve.errors import error_from_info
from warmserve.generation import Failed, Finished, GenerationEvent, Started, TextDelta, Tokenized


class RequestStream:
    """Async iterator over a request's events; `Failed` is raised as its typed error.

    Closing a stream that has not finished cancels the request in its worker.
    """

    def __init__(self, request_id: str, cancel: Callable[[str], None]) -> None:
        self.request_id = request_id
        self._cancel = cancel
        self._queue: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        self.done = False

    def push(self, event: GenerationEvent) -> None:
        """Called on the event loop by the worker handle that owns the request."""
        self._queue.put_nowait(event)

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> Started | TextDelta | Finished | Tokenized:
        if self.done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if isinstance(event, Failed):
            self.done = True
            raise error_from_info(event.error)
        if isinstance(event, Finished | Tokenized):
            self.done = True
        return event

    async def start(self) -> Started:
        """Wait until the engine has admitted the request (or raise why it could not)."""
        event = await self.__anext__()
        if not isinstance(event, Started):
            raise RuntimeError(f"expected Started first, got {event!r}")
        return event

    async def tokens(self) -> list[int]:
        """The answer to a tokenize-only request."""
        event = await self.__anext__()
        if not isinstance(event, Tokenized):
            raise RuntimeError(f"expected Tokenized, got {event!r}")
        return list(event.tokens)

    def close(self) -> None:
        """Cancel in the worker unless the request already ended; safe to call twice."""
        if not self.done:
            self.done = True
            self._cancel(self.request_id)
