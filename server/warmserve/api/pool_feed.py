"""The dashboard's live feed: the pool's events as they happen, and a `stats` frame every interval.

One stream per open dashboard, pushed by the server, so a page never polls a widget. It is the
`/admin/events` feed (a `snapshot`, then each `state` and `worker` event, the same objects) with a
`stats` event interleaved: every model's state, workers, queue, adapters and last minute, read from
what the pools and each model's `RecentWindow` already hold. A frame costs a few hundred bytes and
a loop over 60 numbers per model, whether or not anything happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from warmserve.api.streaming import sse_data
from warmserve.metrics import Metrics
from warmserve.pool import ManagedModel, PoolEvent, PoolManager, Snapshot
from warmserve.pool.events import WorkerStatus
from warmserve.protocol import ModelState


@dataclass(frozen=True)
class AdapterStats:
    name: str
    state: Literal["loading", "ready", "draining", "unloaded"]
    running: int  # requests on it in flight


@dataclass(frozen=True)
class ModelStats:
    model: str
    state: ModelState
    reason: str | None
    ready_workers: int
    configured_workers: int
    workers: tuple[WorkerStatus, ...]
    running: int
    waiting: int  # the queue
    adapters: tuple[AdapterStats, ...]
    tokens_per_s: float  # over the last minute
    tokens_per_s_now: float  # over the last few seconds: the chart's point
    ttft_s: float | None  # mean over the last minute
    requests: int  # finished in the last minute
    rejected: int  # turned away by admission control in the last minute
    cache_hit_rate: float | None  # prompt tokens reused from a worker's KV cache / prompt tokens
    window_s: float


@dataclass(frozen=True)
class Stats:
    models: tuple[ModelStats, ...]
    at: float = field(default_factory=time.time)
    type: Literal["stats"] = "stats"


def _adapters(model: ManagedModel) -> tuple[AdapterStats, ...]:
    loaded = model.pool is not None
    stats = []
    for spec in model.adapters.served:
        state = model.adapters.state(spec.name)
        shown: Literal["loading", "ready", "draining", "unloaded"] = state if loaded or state != "ready" else "unloaded"
        stats.append(AdapterStats(spec.name, shown, model.adapter_in_flight(spec.name).value))
    return tuple(stats)


def model_stats(model: ManagedModel, metrics: Metrics) -> ModelStats:
    rates = metrics.recent(model.spec.name).rates()
    return ModelStats(
        model=model.spec.name,
        state=model.state,
        reason=model.reason if model.state in ("failed", "unhealthy") else None,
        ready_workers=model.ready_workers,
        configured_workers=model.spec.workers,
        workers=tuple(model.workers),
        running=model.running,
        waiting=model.waiting,
        adapters=_adapters(model),
        tokens_per_s=round(rates.tokens_per_s, 2),
        tokens_per_s_now=round(rates.tokens_per_s_now, 2),
        ttft_s=None if rates.ttft_s is None else round(rates.ttft_s, 4),
        requests=rates.requests,
        rejected=rates.rejected,
        cache_hit_rate=None if rates.cache_hit_rate is None else round(rates.cache_hit_rate, 4),
        window_s=round(rates.window_s, 1),
    )


def stats(pools: PoolManager, metrics: Metrics) -> Stats:
    return Stats(tuple(model_stats(model, metrics) for model in list(pools.pools.values())))


async def feed(pools: PoolManager, metrics: Metrics, interval_s: float) -> AsyncIterator[str]:
    """SSE frames: the snapshot, a first `stats` at once, then events as they come and `stats` every interval.

    Ends when the pool's event hub closes (the server drains), as `/admin/events` does.
    """
    events = pools.subscribe()
    loop = asyncio.get_running_loop()
    upcoming: asyncio.Future[Snapshot | PoolEvent] = asyncio.ensure_future(anext(events))
    due = loop.time()
    try:
        while True:
            done, _ = await asyncio.wait({upcoming}, timeout=max(0.0, due - loop.time()))
            if done:
                try:
                    event = upcoming.result()
                except StopAsyncIteration:
                    return
                yield sse_data(dataclasses.asdict(event), event=event.type)
                upcoming = asyncio.ensure_future(anext(events))
            if loop.time() >= due:
                yield sse_data(dataclasses.asdict(stats(pools, metrics)), event="stats")
                due = loop.time() + interval_s
    finally:
        upcoming.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await upcoming
        await events.aclose()  # type: ignore[attr-defined]
