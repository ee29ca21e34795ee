"""The API side of one request in flight: its events, in order, and its cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from warmserve.embedding import Embedded
from warmserve.errors import RequestTimeout, error_from_info
from warmserve.generation import (
    Detokenized,
    Drawn,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Started,
    TextDelta,
    Tokenized,
)
from warmserve.pool.progress import Progress


class RequestStream:
    """Async iterator over a request's events; `Failed` is raised as its typed error.

    Closing a stream that has not finished cancels the request wherever it is (queued
    or running). A request still going at `timeout_s` is cancelled and fails with
    RequestTimeout.

    A generation's stream keeps its `Progress` (pool/progress.py) from the events pushed, so the
    pool can continue it on another worker; `relay_drawn` also passes the tokens drawn on to the
    reader (a Ray Serve replica relays them to the ingress, which keeps the progress there).
    """

    def __init__(
        self,
        request_id: str,
        cancel: Callable[[str], None],
        timeout_s: float,
        on_timeout: Callable[[str], None] | None = None,
        request: GenerationRequest | None = None,
        relay_drawn: bool = False,
        observe: Callable[[GenerationEvent], None] | None = None,
    ) -> None:
        """`observe` sees every event pushed, the pool's own (`Drawn`) too: the tracker's live counts."""
        self.request_id = request_id
        self._observe = observe
        self.progress = Progress(request) if request is not None else None
        self._relay_drawn = relay_drawn
        self._cancel = cancel
        self._on_timeout = on_timeout
        self._queue: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire, timeout_s)
        self.done = False  # the consumer has read the last event
        self._released = False  # cancelled: the request holds no queue place or slot

    def push(self, event: GenerationEvent) -> None:
        """Called on the event loop by whoever owns the request (queue or worker handle)."""
        if self._observe is not None:
            self._observe(event)
        if self.progress is not None:
            shown = self.progress.observe(event)
            if shown is None and not (self._relay_drawn and isinstance(event, Drawn)):
                return
            event = shown or event
        self._queue.put_nowait(event)

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> Started | Drawn | TextDelta | Finished | Tokenized | Detokenized | Embedded:
        if self.done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if isinstance(event, Failed):
            self._end()
            raise error_from_info(event.error)
        if isinstance(event, Finished | Tokenized | Detokenized | Embedded):
            self._end()
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

    async def text(self) -> str:
        """The answer to a detokenize request."""
        event = await self.__anext__()
        if not isinstance(event, Detokenized):
            raise RuntimeError(f"expected Detokenized, got {event!r}")
        return event.text

    async def embedded(self) -> Embedded:
        """The answer to an embedding request."""
        event = await self.__anext__()
        if not isinstance(event, Embedded):
            raise RuntimeError(f"expected Embedded, got {event!r}")
        return event

    def close(self) -> None:
        """Cancel the request unless it already ended; safe to call twice."""
        if self.done or self._released:
            return
        self._released = True
        self._timer.cancel()
        self._cancel(self.request_id)

    def _end(self) -> None:
        self.done = True
        self._timer.cancel()

    def _expire(self, timeout_s: float) -> None:
        if self.done or self._released:
            return
        self.close()
        if self._on_timeout is not None:
            self._on_timeout(self.request_id)
        message = f"The request did not finish within {timeout_s:g} s and was cancelled."
        self._queue.put_nowait(Failed(RequestTimeout(message).info()))
