"""One owner for a request's generations (one per choice): admitted, read and cancelled together.

`Generations.open` submits every choice and waits until each is admitted, so admission
errors are still HTTP statuses. From then on the owner is the only one that closes the
streams: the route's `async with` for a JSON answer, the SSE response for a stream
(see streaming.sse_response), whether the answer finished, failed, or its client left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar

from fastapi import Request

from warmserve.api.disconnect import until_disconnected
from warmserve.errors import WarmServeError
from warmserve.generation import Finished, GenerationRequest, Started, TextDelta, TokenLogprob
from warmserve.pool import Pool, RequestStream
from warmserve.reasoning import ReasoningStart

T = TypeVar("T")
ChoiceEvent = tuple[int, TextDelta | Finished]  # the choice's index, and its event


@dataclass(frozen=True)
class Collected:
    """A whole generation: its text, its tokens' logprobs (when asked for) and how it ended."""

    text: str
    logprobs: tuple[TokenLogprob, ...]
    finished: Finished


class Generations:
    """A request's admitted streams; leaving `async with` (or `close()`) cancels all still running."""

    def __init__(self, client: Request | None) -> None:
        """`client`: watched for a disconnect while awaiting whole answers; None watches nothing."""
        self._client = client
        self._streams: list[RequestStream] = []
        self._started: list[Started] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._finished: dict[int, Finished] = {}

    @classmethod
    async def open(
        cls, pool: Pool, requests: Sequence[GenerationRequest], client: Request | None, response_id: str
    ) -> Generations:
        """Submit every request and wait until each is admitted; on any failure cancel them all.

        Each request carries `response_id` (with its choice index when there are several) into
        the pool and the worker, whose log lines name it.
        """
        generations = cls(client)
        if len(requests) == 1:
            requests = [replace(requests[0], response_id=response_id)]
        else:
            requests = [replace(request, response_id=f"{response_id}/{i}") for i, request in enumerate(requests)]
        await generations._watched(generations._admit(pool, requests))
        return generations

    async def _admit(self, pool: Pool, requests: Sequence[GenerationRequest]) -> None:
        try:
            for request in requests:
                self._streams.append(await pool.submit(request))
            for stream in self._streams:  # all are queued already: waiting in turn costs no time
                self._started.append(await stream.start())
        except BaseException:  # a refusal, a failure, or the client leaving (which cancels this)
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._streams)

    async def __aenter__(self) -> Generations:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel every generation that has not finished; safe to call again."""
        for task in self._pumps:
            task.cancel()
        for stream in self._streams:
            stream.close()

    def events(self) -> AsyncGenerator[ChoiceEvent, None]:
        """Every choice's events as they come, tagged with its index; the first failure is raised."""
        return self._single() if len(self._streams) == 1 else self._merged()

    def prompt_tokens(self) -> list[int]:
        """Each choice's prompt length in tokens, as its engine counted it on admission."""
        return [started.prompt_tokens for started in self._started]

    def cached_tokens(self) -> list[int]:
        """Each choice's prompt tokens that its engine found cached on admission (no prefill for them)."""
        return [started.cached_tokens for started in self._started]

    def reasoning_starts(self) -> list[ReasoningStart | None]:
        """Each choice's reasoning markers and starting phase, for a reasoning model (None: plain text)."""
        return [started.reasoning for started in self._started]

    def finished(self) -> list[Finished]:
        """The finish events read so far, in choice order (all of them once `events()` is through)."""
        return [self._finished[index] for index in sorted(self._finished)]

    async def collect(self) -> list[Collected]:
        """Every choice whole, in choice order; given up (ClientDisconnected) if the client leaves."""
        return await self._watched(self._collect())

    async def _single(self) -> AsyncGenerator[ChoiceEvent, None]:
        """n=1, the per-token path: the stream read directly, no task or queue in between."""
        async for event in self._streams[0]:
            if isinstance(event, TextDelta):
                yield 0, event
            elif isinstance(event, Finished):
                self._finished[0] = event
                yield 0, event

    async def _merged(self) -> AsyncGenerator[ChoiceEvent, None]:
        """n>1: a task per stream feeds one queue, so no choice waits on a slower one."""
        queue: asyncio.Queue[tuple[int, TextDelta | Finished | Exception | None]] = asyncio.Queue()

        async def pump(index: int, stream: RequestStream) -> None:
            try:
                async for event in stream:
                    if isinstance(event, TextDelta | Finished):
                        queue.put_nowait((index, event))
            except Exception as exc:
                queue.put_nowait((index, exc))
            finally:
                queue.put_nowait((index, None))

        self._pumps = [asyncio.create_task(pump(i, stream)) for i, stream in enumerate(self._streams)]
        remaining = len(self._pumps)
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                if isinstance(item, Finished):
                    self._finished[index] = item
                yield index, item

    async def _collect(self) -> list[Collected]:
        texts: list[list[str]] = [[] for _ in self._streams]
        logprobs: list[list[TokenLogprob]] = [[] for _ in self._streams]
        async with aclosing(self.events()) as events:
            async for index, event in events:
                if isinstance(event, TextDelta):
                    texts[index].append(event.text)
                    logprobs[index].extend(event.logprobs)
        if len(self._finished) < len(self._streams):
            raise WarmServeError("The generation ended without a finish event.")
        return [
            Collected("".join(parts), tuple(logprobs[index]), self._finished[index])
            for index, parts in enumerate(texts)
        ]

    async def _watched(self, work: Coroutine[Any, Any, T]) -> T:
        if self._client is None:
            return await work
        return await until_disconnected(self._client, work)
