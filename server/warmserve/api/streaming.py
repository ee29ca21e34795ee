"""Server-sent events: framing, a wire format's end of stream, and the response that owns the request.

A renderer (chat, completions, or a future API) only turns events into framed payloads;
`sse_events` adds what every stream of a format ends with: its done marker after success,
or, once the 200 has gone out, one error event in that format's shape. The format is a
parameter (`SseFormat`), so an API with typed events and no `[DONE]` (OpenAI Responses,
Anthropic Messages) needs only its renderer and its format. `keep_alive` interleaves a
format's heartbeat (Anthropic's `ping`) when its renderer has been silent for a while.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from typing import TypeVar

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from warmserve.api.errors import error_body
from warmserve.errors import WarmServeError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Every event stream's headers: no caching, and no buffering in a proxy (nginx) between us and the client.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_data(payload: dict[str, object] | str, event: str | None = None) -> str:
    """One SSE frame; `event` names its type for APIs with typed events."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n" if event is None else f"event: {event}\ndata: {data}\n\n"


def text_chunk_renderer(render: Callable[[str], str]) -> Callable[[str], str]:
    """A fast path for the one chunk sent per token: the JSON around the text never changes.

    `render(text)` is the full (pydantic) rendering of a chunk carrying `text`; we render it
    once with a marker and splice each token's JSON-encoded text into that frame, so the
    wire format is exactly the model's, built with one json.dumps instead of a model per token.
    """
    marker = "\u0000warmserve\u0000"
    head, tail = render(marker).split(json.dumps(marker))
    return lambda text: head + json.dumps(text) + tail


def sequenced_text_renderer(render: Callable[[str, int], str]) -> Callable[[str, int], str]:
    """`text_chunk_renderer` for events that also carry a sequence number (the Responses API's).

    `render(text, sequence_number)` is the full rendering; both values are spliced in.
    """
    marker, sentinel = "\u0000warmserve\u0000", 918_273_645_546_372_819
    frame = render(marker, sentinel)
    if frame.index(str(sentinel)) > frame.index(json.dumps(marker)):
        raise ValueError("the sequence number must come before the text")
    head, rest = frame.split(str(sentinel))
    middle, tail = rest.split(json.dumps(marker))
    return lambda text, number: f"{head}{number}{middle}{json.dumps(text)}{tail}"


@dataclass(frozen=True)
class SseFormat:
    """How one wire format ends a stream: its error event, and the frame (if any) after success."""

    error_event: Callable[[WarmServeError], str]
    done: str | None = None


# Chat and completions: an error event the OpenAI SDK raises on, and `data: [DONE]` after success.
OPENAI_SSE = SseFormat(error_event=lambda error: sse_data(error_body(error)), done=sse_data("[DONE]"))


async def sse_events(payloads: AsyncGenerator[str, None], fmt: SseFormat) -> AsyncGenerator[str, None]:
    """A renderer's frames, then `fmt`'s done frame; on failure its error event instead, and nothing after."""
    async with aclosing(payloads):
        try:
            async for payload in payloads:
                yield payload
        except Exception as exc:  # after the 200 has gone out, an error event is all we can send
            yield fmt.error_event(_wire_error(exc))
            return
    if fmt.done is not None:
        yield fmt.done


async def keep_alive(source: AsyncGenerator[T, None], beat: T, interval_s: float) -> AsyncGenerator[T, None]:
    """`source`'s items, and `beat` each time it has been silent for `interval_s` (a long prefill).

    The source's pending `__anext__` runs in a task that a beat does not disturb: cancelling
    it would end the source. Closing this generator (or cancelling it: the client left)
    cancels that task, which unwinds the source where it waits, then closes the source.
    """
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval_s)
            if not done:
                yield beat
                continue
            ready, pending = pending, None
            try:
                item = ready.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})  # the source unwinds in its task before it is closed
            if not pending.cancelled():
                pending.exception()  # an item or error that raced the close: dropped with the stream
        await source.aclose()


def _wire_error(error: Exception) -> WarmServeError:
    """A typed error as it is; anything else is a bug, logged here and shown as an internal error."""
    if isinstance(error, WarmServeError):
        return error
    log.error("stream failed", exc_info=error)
    return WarmServeError("The server had an internal error while streaming the response.")


class _OwnedStream(StreamingResponse):
    """An SSE response that releases its request's resources however it ends, the client leaving included."""

    def __init__(
        self, frames: AsyncGenerator[str, None], owner: AbstractAsyncContextManager[object], headers: dict[str, str]
    ) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=headers)
        self._owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._owner:
            await super().__call__(scope, receive, send)


def sse_response(
    payloads: AsyncGenerator[str, None],
    owner: AbstractAsyncContextManager[object],
    fmt: SseFormat,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """The stream of a renderer's `payloads` in `fmt`; leaving `owner` (e.g. Generations) ends the request."""
    return _OwnedStream(sse_events(payloads, fmt), owner, {**SSE_HEADERS, **(headers or {})})
