"""The bookkeeping every pool does for its requests, written once for local and Ray pools.

A pool decides where a request runs; the tracker owns what is the same wherever it runs:
the request's id, its `RequestStream` (cancellation and the time limit), admission against
the model's state, the count of requests in flight, in all and per LoRA adapter (awaitable:
drains wait on them), and the metrics (tokens, durations, time to first token, cancellations,
time-outs, rejections), in Prometheus and in the model's last-minute window. Generated tokens
count there as they are drawn, so the dashboard's tokens/s moves while a long answer streams.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from warmserve.embedding import Embedded
from warmserve.errors import ErrorInfo, ModelFailed, ModelUnavailable, ShuttingDown
from warmserve.generation import Drawn, Failed, Finished, GenerationEvent, GenerationRequest, TextDelta
from warmserve.metrics import Metrics
from warmserve.pool.lifecycle import Lifecycle, Stateful
from warmserve.pool.stream import RequestStream
from warmserve.pool.watch import Watched

log = logging.getLogger(__name__)


@dataclass
class _Open:
    stream: RequestStream
    running_at: float | None = None  # when a worker (or replica) first took it
    held: bool = False  # a worker (or replica) holds it now
    adapter: str | None = None  # the LoRA adapter it runs with
    opened_at: float = 0.0
    first_token_at: float | None = None
    drawn: int = 0  # tokens counted as they came (the rest count at the end)


class RequestTracker:
    def __init__(
        self,
        model: str,
        lifecycle: Lifecycle,
        metrics: Metrics,
        timeout_s: float,
        cancel: Callable[[str], bool],
    ) -> None:
        """`cancel(request_id)` withdraws a request wherever the pool holds it; False if it held none."""
        self._model = model
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._recent = metrics.recent(model)
        self._timeout_s = timeout_s
        self._cancel = cancel
        self._open: dict[str, _Open] = {}
        self._running = 0
        self._ids = itertools.count()
        self.in_flight: Watched[int] = Watched(0)  # requests opened and not yet done
        self._by_adapter: dict[str, Watched[int]] = {}  # the same, per adapter

    @property
    def running(self) -> int:
        """Requests a worker (or replica) holds."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests admitted but not yet held by a worker."""
        return len(self._open) - self._running

    # --- admission ------------------------------------------------------------------------

    def check_admissible(self) -> None:
        """Refuse work now when the model will not serve it soon (stopping, or failing to load)."""
        state = self._lifecycle.state
        if state in ("stopping", "unloaded"):
            raise ShuttingDown(f"Model '{self._model}' is shutting down.")
        if state == "unhealthy":
            reason = self._lifecycle.reason or "its workers keep failing"
            raise ModelUnavailable(f"Model '{self._model}' is unhealthy: {reason}")
        if state == "failed":
            raise ModelFailed(f"Model '{self._model}' could not be loaded: {self._lifecycle.reason}")

    def rejected(self, reason: str) -> None:
        self._metrics.rejected.labels(self._model, reason).inc()
        self._recent.add("rejected")

    # --- a request's life -------------------------------------------------------------------

    def open(
        self,
        response_id: str | None = None,
        kind: str = "",
        request: GenerationRequest | None = None,
        relay_drawn: bool = False,
    ) -> RequestStream:
        """A new request's stream; its id is the API response's (for logs across processes) when given.

        A generation's `request` is kept with its progress, to resume it if its worker dies.
        """
        request_id = response_id or f"{self._model}-{kind}{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        if request_id in self._open:
            request_id = f"{request_id}~{next(self._ids)}"
        observe = functools.partial(self._observe, request_id)
        stream = RequestStream(
            request_id, self._withdraw, self._timeout_s, self._timed_out, request, relay_drawn, observe
        )
        adapter = request.adapter if request is not None else None
        self._open[request_id] = _Open(stream, adapter=adapter, opened_at=time.monotonic())
        self.in_flight.set(len(self._open))
        if adapter is not None:
            counter = self.adapter_in_flight(adapter)
            counter.set(counter.value + 1)
        return stream

    def adapter_in_flight(self, adapter: str) -> Watched[int]:
        """Requests on one adapter opened and not yet done: removing the adapter waits for 0."""
        return self._by_adapter.setdefault(adapter, Watched(0))

    def fail_adapter(self, adapter: str, error: ErrorInfo) -> None:
        """End every request on `adapter` with `error` (its removal's drain ran out of time)."""
        for request_id, entry in list(self._open.items()):
            if entry.adapter == adapter:
                self.fail(request_id, error)

    def run(self, request_id: str) -> None:
        """A worker holds the request now (it stops counting as waiting)."""
        entry = self._open.get(request_id)
        if entry is not None and not entry.held:
            entry.held = True
            entry.running_at = entry.running_at or time.monotonic()
            self._running += 1

    def resume(self, request_id: str, poisoned: bool) -> None:
        """The worker holding the request died: it waits for another (counted), or fails as a poison request."""
        entry = self._open.get(request_id)
        if entry is not None and entry.held:
            entry.held = False
            self._running -= 1
        counter = self._metrics.poison_requests if poisoned else self._metrics.resumed
        counter.labels(self._model).inc()

    def done(self, request_id: str, event: GenerationEvent | None = None) -> None:
        """The request ended (its last event, or None when it was cancelled or lost); safe to call twice."""
        entry = self._open.pop(request_id, None)
        if entry is None:
            return
        if entry.held:
            self._running -= 1
        self.in_flight.set(len(self._open))
        if entry.adapter is not None:
            counter = self.adapter_in_flight(entry.adapter)
            counter.set(counter.value - 1)
            if not counter.value:
                self._by_adapter.pop(entry.adapter, None)
        self.count(event, entry.running_at, entry.drawn)

    def count(self, event: GenerationEvent | None, running_at: float | None = None, drawn: int = 0) -> None:
        """The metrics of a request's last event; its duration counts from a worker taking it, and its
        tokens not `drawn` already (counted live) count now."""
        name = self._model
        if isinstance(event, Embedded):
            self._metrics.prompt_tokens.labels(name).inc(event.prompt_tokens)
        elif isinstance(event, Finished):
            self._metrics.prompt_tokens.labels(name).inc(event.prompt_tokens)
            self._metrics.completion_tokens.labels(name).inc(event.completion_tokens)
            self._metrics.cached_tokens.labels(name).inc(event.cached_tokens)
            self._metrics.drafted_tokens.labels(name).inc(event.drafted_tokens)
            self._metrics.accepted_tokens.labels(name).inc(event.accepted_tokens)
            if running_at is not None:
                self._metrics.request_seconds.labels(name).observe(time.monotonic() - running_at)
            recent = self._recent
            recent.add("requests")
            recent.add("prompt_tokens", event.prompt_tokens)
            recent.add("cached_tokens", event.cached_tokens)
            if event.completion_tokens > drawn:
                recent.add("completion_tokens", event.completion_tokens - drawn)

    def _observe(self, request_id: str, event: GenerationEvent) -> None:
        """Each event a worker sends for a generation: its first token's time, and each token drawn."""
        if not isinstance(event, Drawn | TextDelta):
            return
        entry = self._open.get(request_id)
        if entry is None:
            return
        if entry.first_token_at is None:
            entry.first_token_at = now = time.monotonic()
            ttft = now - entry.opened_at
            self._metrics.time_to_first_token.labels(self._model).observe(ttft)
            self._recent.add("ttft_s", ttft)
            self._recent.add("ttft_n")
        if isinstance(event, Drawn):
            entry.drawn += 1
            self._recent.add("completion_tokens")

    def fail(self, request_id: str, error: ErrorInfo) -> None:
        """End a request with an error its reader will raise (queue timeout, shutdown, drain timeout)."""
        entry = self._open.get(request_id)
        if entry is not None:
            entry.stream.push(Failed(error))
            self._cancel(request_id)
            self.done(request_id)

    def fail_all(self, error: ErrorInfo) -> None:
        for request_id in list(self._open):
            self.fail(request_id, error)

    # --- callbacks of the stream --------------------------------------------------------------

    def _withdraw(self, request_id: str) -> None:
        """The reader closed the stream before its end: the client left (or the time limit hit)."""
        if request_id in self._open and self._cancel(request_id):
            self._metrics.cancelled.labels(self._model).inc()
        self.done(request_id)

    def _timed_out(self, request_id: str) -> None:
        self._metrics.timed_out.labels(self._model).inc()


class Tracked(Stateful):
    """What a pool answers from its `RequestTracker` (and its `Lifecycle`)."""

    _tracker: RequestTracker

    @property
    def running(self) -> int:
        return self._tracker.running

    @property
    def waiting(self) -> int:
        return self._tracker.waiting

    @property
    def in_flight(self) -> Watched[int]:
        return self._tracker.in_flight

    def adapter_in_flight(self, adapter: str) -> Watched[int]:
        return self._tracker.adapter_in_flight(adapter)

    def fail_adapter(self, adapter: str, error: ModelUnavailable) -> None:
        """End every request on `adapter` with `error` (its removal's drain ran out of time)."""
        self._tracker.fail_adapter(adapter, error.info())

    def fail_all(self, error: ModelUnavailable) -> None:
        """End every request in flight with `error` (a drain that ran out of time)."""
        self._tracker.fail_all(error.info())

    def _begin_stop(self, model: str) -> bool:
        """Move to stopping and end every request still in flight; False when stopped already."""
        if self._lifecycle.state == "unloaded":
            return False
        self._lifecycle.move("stopping")
        self.fail_all(ShuttingDown(f"Model '{model}' is shutting down."))
        return True
