"""The load generator: OpenAI-protocol requests at a fixed concurrency, timed.

It speaks only the wire protocol (JSON bodies, SSE `data:` lines), so it measures
any OpenAI-compatible server. Each level runs `concurrency` closed-loop workers
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
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    status_code: int | None = None
    error: str | None = None
    end: float | None = None

    def take(self, payload: Any, stream: bool) -> None:
        """Read one stream chunk, or the whole answer when not streaming (no token times then)."""
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, got {payload!r:.200}")
        if payload.get("error"):
            self.error = _error_text(payload)
            return
        if isinstance(payload.get("usage"), dict):
            self.usage = payload["usage"]
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict):
                raise ValueError(f"expected each choice to be a JSON object, got {choice!r:.200}")
            if stream and _delta_text(choice):
                self.stamps.append(perf_counter())
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def record(self, level_start: float) -> RequestRecord:
        end = self.end if self.end is not None else perf_counter()
        outcome: Outcome = "error" if self.error else "ok" if self.end is not None else "cancelled"
        usage = self.usage or {}
        tokens, tokens_from = _token_count(usage, self.stamps)
        return RequestRecord(
            number=self.number,
            outcome=outcome,
            started_s=self.start - level_start,
            e2e_s=end - self.start,
            ttft_s=self.stamps[0] - self.start if self.stamps else None,
            itl_s=tuple(later - earlier for earlier, later in pairwise(self.stamps)),
            tokens=tokens,
            tokens_from=tokens_from,
            prompt_tokens=usage.get("prompt_tokens"),
            finish_reason=self.finish_reason,
            status_code=self.status_code,
            error=self.error,
        )


def _delta_text(choice: dict[str, Any]) -> str:
    """The text a stream chunk's choice adds: `text` (completions) or `delta.content` (chat)."""
    if "text" in choice:
        return str(choice["text"] or "")
    return str((choice.get("delta") or {}).get("content") or "")


def _token_count(usage: dict[str, Any], stamps: list[float]) -> tuple[int | None, Literal["usage", "chunks"] | None]:
    if isinstance(usage.get("completion_tokens"), int):
        return usage["completion_tokens"], "usage"
    if stamps:
        return len(stamps), "chunks"
    return None, None


def _error_text(payload: Any) -> str:
    """The message of an OpenAI error body, or the body itself."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return json.dumps(payload)[:500]


def _response_error(response: httpx.Response) -> str:
    try:
        message = _error_text(response.json())
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
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "stream": settings.stream,
    }
    if settings.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    if settings.stream:
        body["stream_options"] = {"include_usage": True}
    return body


def endpoint_path(settings: BenchSettings) -> str:
    return "/chat/completions" if settings.endpoint == "chat" else "/completions"


async def _exchange(client: httpx.AsyncClient, settings: BenchSettings, body: Any, probe: _Probe) -> None:
    path = endpoint_path(settings)
    if not settings.stream:
        response = await client.post(path, json=body)
        probe.status_code = response.status_code
        if response.status_code != 200:
            probe.error = _response_error(response)
        else:
            probe.take(response.json(), stream=False)
        probe.end = perf_counter()
        return
    async with client.stream("POST", path, json=body) as response:
        probe.status_code = response.status_code
        if response.status_code != 200:
            await response.aread()
            probe.error = _response_error(response)
            probe.end = perf_counter()
            return
        async for data in _sse_data(response.aiter_lines()):
            if data.strip() == "[DONE]":
                probe.end = perf_counter()
                return
            probe.take(json.loads(data), stream=True)
            if probe.error:
                break
    probe.end = perf_counter()
    probe.error = probe.error or "the stream ended without 'data: [DONE]'"


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
