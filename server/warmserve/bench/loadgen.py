"""The load generator: requests in one of four wire formats (bench/wire.py) at a fixed concurrency, timed.

It speaks only the wire protocol (JSON bodies, SSE `data:` lines), so it measures
any OpenAI- (or Anthropic-) compatible server. Each level runs `concurrency` closed-loop workers
that share one httpx client; a level stops after its requests or at its deadline,
whichever comes first, cancelling what is still running at the deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import pairwise
from time import perf_counter
from typing import Any, Literal

import httpx

from warmserve.bench.prompt import prompt_text
from warmserve.bench.settings import BenchSettings
from warmserve.bench.wire import WIRES, Reading, error_text

Outcome = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True)
class RequestRecord:
    """What one request showed. Times are seconds; `started_s` counts from the level's start."""

    number: int
    outcome: Outcome
    started_s: float
    e2e_s: float
    ttft_s: float | None = None
    itl_s: tuple[float, ...] = ()
    tokens: int | None = None
    tokens_from: Literal["usage", "chunks"] | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LevelRun:
    concurrency: int
    planned: int
    elapsed_s: float
    records: tuple[RequestRecord, ...]


class BenchError(Exception):
    """The benchmark cannot run at all (as opposed to requests that fail, which are results)."""


@dataclass
class _Probe:
    """Collects what one response shows as it arrives; survives the request's cancellation."""

    number: int
    start: float
    stamps: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    complete: bool = False
    status_code: int | None = None
    error: str | None = None
    end: float | None = None

    def take(self, reading: Reading) -> None:
        """One payload's facts: a stream's event, or the whole answer when not streaming (no token times then)."""
        if reading.error:
            self.error = reading.error
            return
        if reading.text:
            self.stamps.append(perf_counter())
        self.prompt_tokens = reading.prompt_tokens if reading.prompt_tokens is not None else self.prompt_tokens
        if reading.completion_tokens is not None:
            self.completion_tokens = reading.completion_tokens
        self.finish_reason = reading.finish_reason or self.finish_reason
        self.complete = self.complete or reading.complete

    def record(self, level_start: float) -> RequestRecord:
        end = self.end if self.end is not None else perf_counter()
        outcome: Outcome = "error" if self.error else "ok" if self.end is not None else "cancelled"
        tokens, tokens_from = _token_count(self.completion_tokens, self.stamps)
        return RequestRecord(
            number=self.number,
            outcome=outcome,
            started_s=self.start - level_start,
            e2e_s=end - self.start,
            ttft_s=self.stamps[0] - self.start if self.stamps else None,
            itl_s=tuple(later - earlier for earlier, later in pairwise(self.stamps)),
            tokens=tokens,
            tokens_from=tokens_from,
            prompt_tokens=self.prompt_tokens,
            finish_reason=self.finish_reason,
            status_code=self.status_code,
            error=self.error,
        )


def _token_count(
    completion_tokens: int | None, stamps: list[float]
) -> tuple[int | None, Literal["usage", "chunks"] | None]:
    if completion_tokens is not None:
        return completion_tokens, "usage"
    if stamps:
        return len(stamps), "chunks"
    return None, None


def _response_error(response: httpx.Response) -> str:
    try:
        message = error_text(response.json())
    except ValueError:
        message = response.text[:500] or "(empty body)"
    return f"HTTP {response.status_code}: {message}"


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each server-sent event (several `data:` lines of one event join with newlines)."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            yield "\n".join(data)
            data = []
    if data:
        yield "\n".join(data)


def request_body(settings: BenchSettings, model: str, number: int) -> dict[str, Any]:
    text = prompt_text(number, settings.prompt_tokens)
    return WIRES[settings.endpoint].body(model, text, settings.max_tokens, settings.temperature, settings.stream)


def endpoint_path(settings: BenchSettings) -> str:
    return WIRES[settings.endpoint].path


def _payload(data: str) -> dict[str, Any]:
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {payload!r:.200}")
    return payload


async def _exchange(client: httpx.AsyncClient, settings: BenchSettings, body: Any, probe: _Probe) -> None:
    wire = WIRES[settings.endpoint]
    if not settings.stream:
        response = await client.post(wire.path, json=body)
        probe.status_code = response.status_code
        if response.status_code != 200:
            probe.error = _response_error(response)
        else:
            probe.take(wire.read(_payload(response.text), False))
        probe.end = perf_counter()
        return
    async with client.stream("POST", wire.path, json=body) as response:
        probe.status_code = response.status_code
        if response.status_code != 200:
            await response.aread()
            probe.error = _response_error(response)
            probe.end = perf_counter()
            return
        async for data in _sse_data(response.aiter_lines()):
            if wire.done_marker and data.strip() == "[DONE]":
                probe.end = perf_counter()
                return
            probe.take(wire.read(_payload(data), True))
            if probe.error:
                break
            if probe.complete and not wire.done_marker:
                probe.end = perf_counter()
                return
    probe.end = perf_counter()
    ending = "'data: [DONE]'" if wire.done_marker else "its final event"
    probe.error = probe.error or f"the stream ended without {ending}"


async def measure(
    client: httpx.AsyncClient,
    settings: BenchSettings,
    model: str,
    number: int,
    level_start: float,
    records: list[RequestRecord],
) -> None:
    """One timed request, recorded even when it fails or is cancelled (which still propagates)."""
    body = request_body(settings, model, number)
    probe = _Probe(number=number, start=perf_counter())
    try:
        await asyncio.wait_for(_exchange(client, settings, body, probe), settings.timeout)
    except asyncio.TimeoutError:
        probe.error = f"no complete answer within {settings.timeout:g} s"
    except httpx.HTTPError as exc:
        probe.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except ValueError as exc:  # JSON that does not parse, or a body of the wrong shape
        probe.error = f"unreadable response: {exc}"
    finally:
        records.append(probe.record(level_start))


async def run_level(
    client: httpx.AsyncClient, settings: BenchSettings, model: str, concurrency: int, first_number: int
) -> LevelRun:
    """`settings.requests` requests, `concurrency` at a time, within `settings.max_seconds`."""
    records: list[RequestRecord] = []
    numbers = iter(range(first_number, first_number + settings.requests))
    start = perf_counter()
    deadline = start + settings.max_seconds

    async def worker() -> None:
        for number in numbers:  # one iterator shared by every worker: each number is sent once
            if perf_counter() >= deadline:
                return
            await measure(client, settings, model, number, start, records)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    done, pending = await asyncio.wait(workers, timeout=settings.max_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # a bug in a worker must not pass for a quiet level
    return LevelRun(
        concurrency=concurrency,
        planned=settings.requests,
        elapsed_s=perf_counter() - start,
        records=tuple(sorted(records, key=lambda r: r.number)),
    )
