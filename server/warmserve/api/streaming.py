"""Running pool streams for a route: SSE framing, merging choices, disconnects.

A request's worker-side generation must stop when its client goes away. For SSE,
Starlette cancels the response generator on disconnect and our `finally` closes
the pool stream; for plain JSON, `until_disconnected` watches the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from warmserve.api.errors import ClientDisconnected, error_body
from warmserve.errors import WarmServeError
from warmserve.generation import Finished, GenerationRequest, TextDelta, TokenLogprob
from warmserve.pool import Pool, RequestStream

T = TypeVar("T")


async def open_streams(pool: Pool, requests: Sequence[GenerationRequest]) -> list[RequestStream]:
    """Submit every request and wait until each is admitted; on any failure cancel them all."""
    streams: list[RequestStream] = []
    try:
        for request in requests:
            streams.append(await pool.submit(request))
        await asyncio.gather(*(s.start() for s in streams))
    except BaseException:
        for stream in streams:
            stream.close()
        raise
    return streams


@dataclass(frozen=True)
class Collected:
    """A whole generation: its text, its tokens' logprobs (when asked for) and how it ended."""

    text: str
    logprobs: tuple[TokenLogprob, ...]
    finished: Finished


async def collect(stream: RequestStream) -> Collected:
    parts: list[str] = []
    logprobs: list[TokenLogprob] = []
    async for event in stream:
        if isinstance(event, TextDelta):
            parts.append(event.text)
            logprobs.extend(event.logprobs)
        elif isinstance(event, Finished):
            return Collected("".join(parts), tuple(logprobs), event)
    raise WarmServeError("The generation ended without a finish event.")


async def collect_all(streams: Sequence[RequestStream]) -> list[Collected]:
    """Every stream's text, in order; the first failure cancels the others and is raised."""
    tasks = [asyncio.ensure_future(collect(s)) for s in streams]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def merged(streams: Sequence[RequestStream]) -> AsyncIterator[tuple[int, TextDelta | Finished]]:
    """Events of several streams as they come, tagged with the choice index."""
    queue: asyncio.Queue[tuple[int, TextDelta | Finished | BaseException | None]] = asyncio.Queue()

    async def pump(index: int, stream: RequestStream) -> None:
        try:
            async for event in stream:
                if isinstance(event, TextDelta | Finished):
                    await queue.put((index, event))
        except BaseException as exc:
            await queue.put((index, exc))
        finally:
            await queue.put((index, None))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(streams)
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            stream.close()


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, but give up (and raise ClientDisconnected) if the client leaves."""
    work_task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(_wait_for_disconnect(request))
    try:
        await asyncio.wait({work_task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work_task.done():
            return work_task.result()
        raise ClientDisconnected
    finally:
        watcher.cancel()
        work_task.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def sse_response(events: AsyncIterator[str], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


def sse_data(payload: dict[str, object] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def text_chunk_renderer(render: Callable[[str], str]) -> Callable[[str], str]:
    """A fast path for the one chunk sent per token: the JSON around the text never changes.

    `render(text)` is the full (pydantic) rendering of a chunk carrying `text`; we render it
    once with a marker and splice each token's JSON-encoded text into that frame, so the
    wire format is exactly the model's, built with one json.dumps instead of a model per token.
    """
    marker = "\u0000warmserve\u0000"
    head, tail = render(marker).split(json.dumps(marker))
    return lambda text: head + json.dumps(text) + tail


def sse_error(error: Exception) -> str:
    """A failure after the 200 has gone out: an error event the OpenAI SDK raises on."""
    if not isinstance(error, WarmServeError):
        error = WarmServeError("The server had an internal error while streaming the response.")
    return sse_data(error_body(error))
