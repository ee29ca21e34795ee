"""What happens to the served models, as typed events for anyone who wants to follow it.

The pools publish a model's state changes and its workers' lives (started, ready, died,
restarted, load failed) to one `EventHub` per app. `ManagedModel`, `/ready`, `/admin` and
Ray replicas wait on these changes instead of polling, and `GET /admin/events` streams them:
a subscriber first gets a `Snapshot` of every model, then each change as it happens.

    unloaded --load--> loading --every worker ready--> ready
    loading / ready --some workers ready--> degraded --all ready--> ready
    ready / degraded --every worker died, restarting--> loading
    loading --every worker keeps failing--> unhealthy --a worker loads--> degraded / ready
    loading / unhealthy --a load failed for good (no worker ready)--> failed, not retried
    loading / unhealthy --the workers could not be started--> unloaded
    any loaded state --unload--> draining --in-flight requests done--> stopping --> unloaded
    any loaded state --server stop--> stopping --> unloaded
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from warmserve.protocol import ModelState

log = logging.getLogger(__name__)

WorkerEventKind = Literal["started", "ready", "load_failed", "died", "restarted", "stopped"]

# Which state may follow which: anything else is a bug in the pool, raised where it happens.
TRANSITIONS: dict[ModelState, frozenset[ModelState]] = {
    "unloaded": frozenset({"loading"}),
    "loading": frozenset({"ready", "degraded", "unhealthy", "failed", "draining", "stopping", "unloaded"}),
    "ready": frozenset({"degraded", "loading", "unhealthy", "failed", "draining", "stopping"}),
    "degraded": frozenset({"ready", "loading", "unhealthy", "failed", "draining", "stopping"}),
    "unhealthy": frozenset({"ready", "degraded", "loading", "failed", "draining", "stopping", "unloaded"}),
    "failed": frozenset({"ready", "degraded", "draining", "stopping", "unloaded"}),
    "draining": frozenset({"stopping"}),
    "stopping": frozenset({"unloaded"}),
}


@dataclass(frozen=True)
class StateChanged:
    model: str
    state: ModelState
    previous: ModelState
    reason: str | None = None  # why, when it is bad news (unhealthy: the load error)
    at: float = field(default_factory=time.time)
    type: Literal["state"] = "state"


@dataclass(frozen=True)
class WorkerEvent:
    model: str
    worker: int  # the worker's index within its model
    kind: WorkerEventKind
    pid: int | None = None
    reason: str | None = None  # died: the exit code; load_failed: the error
    at: float = field(default_factory=time.time)
    type: Literal["worker"] = "worker"


@dataclass(frozen=True)
class WorkerStatus:
    """One worker as the admin API shows it."""

    index: int
    pid: int | None
    state: Literal["loading", "ready", "failed", "exited"]
    running: int
    load_error: str | None = None
    slots: int = 0  # requests its engine runs at once; 0 until it holds the model
    restarts: int = 0  # processes started in this worker's place after one exited
    last_exit: str | None = None  # how the last process in its place ended ("exited with code -9")


@dataclass(frozen=True)
class ModelStatus:
    model: str
    state: ModelState
    ready_workers: int
    workers: tuple[WorkerStatus, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Every model as it is when a subscriber joins; changes follow."""

    models: tuple[ModelStatus, ...]
    at: float = field(default_factory=time.time)
    type: Literal["snapshot"] = "snapshot"


PoolEvent = StateChanged | WorkerEvent
Publish = Callable[[PoolEvent], None]

_QUEUE_LIMIT = 1000  # a subscriber this far behind is dropped rather than let grow without bound


class EventHub:
    """Fan-out of pool events to any number of subscribers, each with its own queue."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._subscribers: set[asyncio.Queue[PoolEvent | None]] = set()
        self._closed = False

    def publish(self, event: PoolEvent) -> None:
        if isinstance(event, StateChanged):  # a model that failed for good is reported here, once, as an error
            level = logging.ERROR if event.state == "failed" else logging.INFO
            log.log(level, "model %s: %s -> %s%s", event.model, event.previous, event.state, _because(event.reason))
        for queue in list(self._subscribers):
            if queue.qsize() >= _QUEUE_LIMIT:
                self._subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Snapshot | PoolEvent]:
        """A snapshot of every model, then every event from that moment on (until the hub closes)."""
        queue: asyncio.Queue[PoolEvent | None] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(None)
        else:
            self._subscribers.add(queue)  # before the snapshot: nothing falls between the two
        try:
            yield self._snapshot()
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """End every subscription, and later ones after their snapshot (the server stops)."""
        self._closed = True
        for queue in self._subscribers:
            queue.put_nowait(None)
        self._subscribers.clear()


def _because(reason: str | None) -> str:
    return f" ({reason})" if reason else ""
