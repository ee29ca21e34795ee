"""The supervisor of one model: N warm workers, dispatch, restarts.

A request goes straight to a ready worker that has a free slot (engine capacity, capped by
`max_running`): the one that likely holds the longest prefix of its prompt (pool/prefix_routing.py)
unless it runs more than `prefix_routing_slack` requests beyond the least loaded, else the least
loaded; among equally loaded ones, the one running fewest requests on other LoRA adapters (a
llama.cpp worker decodes each adapter's requests in a call of their own). Otherwise it waits in a bounded FIFO
(`max_waiting`, else 429) for at most `queue_timeout_s` (else 503), and is sent as
soon as a slot frees. A worker that dies is replaced, and its requests carry on: each
continues on the next free worker (the first in the queue) from the last token its
stream recorded (pool/progress.py), unless it was running on each of two workers that
died (a poison request: 422) or no worker takes it within `queue_timeout_s` (503
`worker_died`). A worker that keeps failing is restarted with exponential backoff, and when
every worker keeps failing to load, the model is `unhealthy` and requests fail at
once instead of queueing for a model that will not come. A model on the Hugging Face hub is
downloaded first, once for all its workers (pool/fetch.py), while the model is `loading`; a
download that fails makes it `unhealthy` with the reason. A load error that loading again
cannot cure (`permanent`: a missing file, a format the engine cannot read) is not retried: with
no worker ready the model is `failed`, with that error as its reason. The request bookkeeping
(ids, streams, metrics) is the `RequestTracker`'s; state changes are the `Lifecycle`'s.

Adapters added at run time go to every live worker (each answers when it has loaded it) and into
the pool's spec, which workers started later load with the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import (
    ErrorInfo,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
    PoisonRequest,
    QueueTimeout,
    WarmServeError,
    WorkerDied,
    error_from_info,
    is_permanent,
)
from warmserve.generation import GenerationEvent, GenerationRequest, ModelFacts, PromptCacheStats
from warmserve.hub import DownloadStatus
from warmserve.metrics import Metrics
from warmserve.pool.admission import Queued, WaitingQueue
from warmserve.pool.cache_metrics import record_prompt_cache
from warmserve.pool.core_lending import CoreLending
from warmserve.pool.events import Publish, WorkerEvent, WorkerEventKind, WorkerStatus
from warmserve.pool.fetch import ModelFetch
from warmserve.pool.lifecycle import Lifecycle
from warmserve.pool.messages import AdapterChanged, Detokenize, Embed, LoadAdapter, Submit, Tokenize, UnloadAdapter
from warmserve.pool.prefix_routing import PrefixRouter, prefix_blocks
from warmserve.pool.progress import POISON_AFTER
from warmserve.pool.stream import RequestStream
from warmserve.pool.tracker import RequestTracker, Tracked
from warmserve.pool.worker_handle import KILL_WAIT_S, Held, WorkerHandle

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 120.0
_UNHEALTHY_AFTER = 3  # consecutive failed starts of every worker
_STOP_TIMEOUT_S = 10.0
# The longest stop() takes once no request is left: each worker is asked to exit, then killed,
# then its end is announced.
STOP_BOUND_S = _STOP_TIMEOUT_S + 2 * KILL_WAIT_S


def _ignore(_: object) -> None:
    pass


class ModelPool(Tracked):
    spec: ModelSpec
    _failures: list[int]  # consecutive failed starts, per worker
    _lending: CoreLending | None

    def __init__(self, spec: ModelSpec, log_level: str, metrics: Metrics, publish: Publish = _ignore) -> None:
        self._log_level = log_level
        self._publish = publish
        self._lifecycle = Lifecycle(spec.name, publish)
        self._tracker = RequestTracker(spec.name, self._lifecycle, metrics, spec.request_timeout_s, self._cancel)
        self._metrics = metrics
        self._workers: list[WorkerHandle] = []
        self._lasting: ErrorInfo | None = None  # a load error retrying cannot cure: no worker is restarted after it
        self._waiting = WaitingQueue(spec.queue_timeout_s, self._queue_timed_out)
        self._restarts: set[asyncio.Task[None]] = set()
        self._fetch: ModelFetch | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._started_at = time.monotonic()
        self._plan(spec)

    def _plan(self, spec: ModelSpec) -> None:
        """What follows from the worker count; planned again when a download reveals the model's size."""
        self.spec = spec
        self._failures = [0] * spec.workers
        self._restarted = [0] * spec.workers  # per worker index, for the dashboard and /admin
        self._last_exit: list[str | None] = [None] * spec.workers
        # llama.cpp threads can change between steps; other engines and GPUs keep theirs.
        shares_cores = (
            spec.share_idle_cores
            and spec.backend == "llama_cpp"
            and spec.n_gpu_layers == 0
            and spec.threads is None
            and spec.workers > 1
        )
        self._lending = CoreLending(spec.effective_threads(), lambda: self._workers) if shares_cores else None
        routes = spec.routes_by_prefix
        self._router = PrefixRouter(spec.prefix_routing_slack, spec.slots * spec.n_ctx) if routes else None

    # --- state --------------------------------------------------------------------------

    @property
    def workers(self) -> list[WorkerStatus]:
        return [
            replace(w.status(), restarts=self._restarted[w.index], last_exit=self._last_exit[w.index])
            for w in self._workers
        ]

    @property
    def ready_workers(self) -> int:
        return sum(w.state == "ready" for w in self._workers)

    @property
    def facts(self) -> ModelFacts | None:
        """What the engine reported about the model, once a worker has loaded it."""
        return next((w.facts for w in self._workers if w.facts is not None), None)

    @property
    def download(self) -> DownloadStatus | None:
        """Bytes of the model's files downloaded so far, while the pool fetches it from the hub."""
        return self._fetch.status if self._fetch is not None else None

    def _update_state(self) -> None:
        if self._lifecycle.state in ("stopping", "unloaded"):
            return
        ready = self.ready_workers
        if ready == self.spec.workers:
            self._lifecycle.move("ready")
        elif ready:
            self._lifecycle.move("degraded")
        elif self._lasting is not None:
            self._lifecycle.move("failed", self._lasting.message)
        elif all(f >= _UNHEALTHY_AFTER for f in self._failures):
            error = next((w.load_error for w in self._workers if w.load_error is not None), None)
            self._lifecycle.move("unhealthy", error.message if error else "its workers keep failing")
        else:
            self._lifecycle.move("loading")

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the workers; a hub model's download comes first, in the background (the model is `loading`)."""
        self._started_at = time.monotonic()
        self._lifecycle.move("loading")
        reference = self.spec.hub_reference()
        if reference is None:
            await self._start_workers()
            return
        self._fetch = ModelFetch(reference, self.spec.revision)
        self._fetching = asyncio.get_running_loop().create_task(self._fetch_then_start(self._fetch))

    async def _start_workers(self) -> None:
        self._workers = [self._new_worker(i) for i in range(self.spec.workers)]
        await asyncio.gather(*(w.start() for w in self._workers))

    async def _fetch_then_start(self, fetch: ModelFetch) -> None:
        try:
            await fetch.run()
        except Exception as exc:
            reason = exc.message if isinstance(exc, WarmServeError) else f"{type(exc).__name__}: {exc}"
            log.error("%s: %s", self.spec.name, reason)
            if self._lifecycle.state == "loading":
                self._lifecycle.move("unhealthy", reason)
                self._fail_waiting()
            return
        finally:
            self._fetch = None
        if self._lifecycle.state != "loading":
            return
        self._plan(self.spec.with_auto_workers())
        await self._start_workers()

    async def stop(self) -> None:
        if not self._begin_stop(self.spec.name):
            return
        if self._fetch is not None:
            self._fetch.cancel()
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)
        if self._lending is not None:
            self._lending.stop()
        for task in self._restarts:
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(w.stop, _STOP_TIMEOUT_S) for w in self._workers))
        # Each worker's end is announced (and its requests failed) before the pool says it is unloaded.
        spawned = [w for w in self._workers if w.pid is not None]
        await asyncio.gather(*(asyncio.wait_for(w.exited.wait(), KILL_WAIT_S) for w in spawned), return_exceptions=True)
        self._lifecycle.move("unloaded")

    # --- requests -----------------------------------------------------------------------

    async def submit(self, request: GenerationRequest, relay_drawn: bool = False) -> RequestStream:
        """Admit a request: to a free slot now, or to the waiting queue; events come on the stream
        (with the tokens drawn too when `relay_drawn`: a Ray Serve replica passes them on)."""
        self._tracker.check_admissible()
        worker = self._free_worker(request) if not len(self._waiting) else None
        if worker is None and len(self._waiting) >= self.spec.max_waiting:
            self._tracker.rejected("overloaded")
            raise Overloaded(
                f"Model '{self.spec.name}' is at capacity: {self.running} running and "
                f"{len(self._waiting)} waiting. Retry after a moment."
            )
        stream = self._tracker.open(request.response_id, request=request, relay_drawn=relay_drawn)
        message = Submit(stream.request_id, request)
        if worker is not None:
            self._send(worker, stream, message)
        else:
            self._waiting.push(Queued(stream, message))
        return stream

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens, counted by a worker's own tokenizer; never queued behind generations."""
        stream = self._ask_worker(lambda request_id: Tokenize(request_id, request), "tok-")
        try:
            return await stream.tokens()
        finally:
            stream.close()

    async def detokenize(self, tokens: list[int]) -> str:
        stream = self._ask_worker(lambda request_id: Detokenize(request_id, tuple(tokens)), "tok-")
        try:
            return await stream.text()
        finally:
            stream.close()

    async def embed(self, request: EmbedRequest) -> Embedded:
        """Vectors from the least-busy ready worker, which computes them between its generation steps."""
        stream = self._ask_worker(lambda request_id: Embed(request_id, request), "emb-")
        try:
            return await stream.embedded()
        finally:
            stream.close()

    def _ask_worker(self, message: Callable[[str], Tokenize | Detokenize | Embed], kind: str) -> RequestStream:
        """Send work that skips the generation queue to the least busy ready worker; it answers between steps."""
        self._tracker.check_admissible()
        ready = [w for w in self._workers if w.state == "ready"]
        if not ready:
            raise ModelUnavailable(f"Model '{self.spec.name}' has no ready worker yet; retry shortly.")
        worker = min(ready, key=lambda w: len(w.inflight))
        stream = self._tracker.open(kind=kind)
        self._tracker.run(stream.request_id)
        worker.submit(stream, message(stream.request_id))
        return stream

    def _free_worker(self, request: GenerationRequest) -> WorkerHandle | None:
        limit = self.spec.max_running
        if limit and self.running >= limit:
            return None
        free = [w for w in self._workers if w.state == "ready" and len(w.inflight) < w.capacity]
        if not free:
            return None

        def load(worker: WorkerHandle) -> tuple[int, int]:
            return len(worker.inflight), _other_adapters(worker, request.adapter)

        if self._router is None or len(free) == 1:
            return min(free, key=load)
        return self._router.choose(free, prefix_blocks(request), lambda w: len(w.inflight), load)

    def _send(self, worker: WorkerHandle, stream: RequestStream, message: Submit) -> None:
        self._tracker.run(stream.request_id)
        if self._router is not None:
            self._router.sent(worker, prefix_blocks(message.request))
        if self._lending is not None:
            self._lending.balance(also_busy=worker)
        worker.submit(stream, message)
        log.debug("request %s -> worker %d (%d in flight)", stream.request_id, worker.index, len(worker.inflight))

    def _dispatch(self) -> None:
        if self._lifecycle.state == "stopping":
            return
        while (request := self._waiting.peek()) is not None and (worker := self._free_worker(request)) is not None:
            item = self._waiting.pop()
            if item is not None:
                self._send(worker, item.stream, item.message)

    def _cancel(self, request_id: str) -> bool:
        return self._waiting.remove(request_id) or any(w.cancel(request_id) for w in self._workers)

    def _queue_timed_out(self, item: Queued) -> None:
        waited = self.spec.queue_timeout_s
        if item.resumed:
            reason = f"no other worker took it over within {waited:g} s"
            self._tracker.fail(item.stream.request_id, self._not_resumed(reason))
            return
        self._tracker.rejected("queue_timeout")
        error = QueueTimeout(f"The request waited {waited:g} s for a free slot on '{self.spec.name}'.")
        self._tracker.fail(item.stream.request_id, error.info())

    def _not_resumed(self, reason: str) -> ErrorInfo:
        message = (
            f"The worker serving model '{self.spec.name}' stopped before the request completed, and {reason}. "
            "Retry the request."
        )
        return WorkerDied(message).info()

    def _on_worker_lost(self, worker: WorkerHandle, lost: list[Held], exitcode: int | None) -> None:
        """A worker died holding `lost`: each carries on elsewhere (pool/progress.py) or fails with the reason."""
        if lost:
            held = ", ".join(h.stream.request_id for h in lost)
            log.warning(
                "%s: worker %d (pid %s, exit code %s) died holding %s",
                self.spec.name,
                worker.index,
                worker.pid,
                exitcode,
                held,
            )
        for item in lost:
            self._resume(item, exitcode)
        self._dispatch()
        if self._lending is not None:
            self._lending.balance()

    def _resume(self, held: Held, exitcode: int | None) -> None:
        stream, message = held.stream, held.message
        request_id = stream.request_id
        if self._lifecycle.state in ("stopping", "unloaded"):
            self._tracker.fail(request_id, self._not_resumed(f"the model is shutting down (exit code {exitcode})"))
            return
        if not isinstance(message, Submit) or stream.progress is None:  # a quick question: asked again
            ready = [w for w in self._workers if w.state == "ready"]
            if not ready:
                self._tracker.fail(request_id, self._not_resumed("no other worker is ready"))
                return
            min(ready, key=lambda w: len(w.inflight)).submit(stream, message)
            return
        poisoned = stream.progress.died()
        self._tracker.resume(request_id, poisoned)
        if poisoned:
            log.error(
                "%s: request %s was running on %d workers that died; failing it",
                self.spec.name,
                request_id,
                POISON_AFTER,
            )
            error = PoisonRequest(
                f"The request was running on {POISON_AFTER} workers of model '{self.spec.name}' that died while "
                "serving it, so it is not tried again: it may be what crashes them."
            )
            self._tracker.fail(request_id, error.info())
            return
        resumed = Submit(request_id, stream.progress.continuation())
        log.info("%s: request %s resumes after %d tokens", self.spec.name, request_id, len(stream.progress.tokens))
        self._waiting.push(Queued(stream, resumed, resumed=True))

    def _on_request_done(self, worker: WorkerHandle, request_id: str, event: GenerationEvent | None) -> None:
        self._tracker.done(request_id, event)
        self._dispatch()
        if self._lending is not None:
            self._lending.balance()

    # --- adapters -----------------------------------------------------------------------

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Load a LoRA adapter on every live worker; workers started from now on load it with the model.

        If a worker cannot load it, the others unload it again and its error (a 400 naming the adapter)
        is raised: the base model and the other adapters serve on.
        """
        live = self._live_workers()
        self.spec = self.spec.model_copy(update={"adapters": [*self.spec.adapters, adapter]})
        answers = await asyncio.gather(*(w.change_adapter(LoadAdapter(adapter)) for w in live))
        error = next((a.error for a in answers if a is not None and a.error is not None), None)
        if error is not None:
            await self.remove_adapter(adapter.name)
            raise error_from_info(error)

    async def remove_adapter(self, name: str) -> None:
        """Unload an adapter from every live worker (its requests were drained first)."""
        self.spec = self.spec.model_copy(update={"adapters": [a for a in self.spec.adapters if a.name != name]})
        answers = await asyncio.gather(*(w.change_adapter(UnloadAdapter(name)) for w in self._live_workers()))
        failed = [a for a in answers if isinstance(a, AdapterChanged) and a.error is not None]
        for answer in failed:
            assert answer.error is not None
            log.warning("%s: unloading adapter %s failed: %s", self.spec.name, name, answer.error.message)

    def _live_workers(self) -> list[WorkerHandle]:
        """Workers that hold the model or are loading it (those that failed start again from the spec)."""
        return [w for w in self._workers if w.state in ("loading", "ready")]

    # --- workers ------------------------------------------------------------------------

    def _new_worker(self, index: int, restart: bool = False) -> WorkerHandle:
        def on_change(worker: WorkerHandle, kind: WorkerEventKind, reason: str | None) -> None:
            self._on_worker_change(worker, "restarted" if restart and kind == "started" else kind, reason)

        return WorkerHandle(
            self.spec, index, self._log_level, on_change, self._on_request_done, self._on_worker_lost, self._on_cache
        )

    def _on_cache(self, worker: WorkerHandle, before: PromptCacheStats | None, now: PromptCacheStats) -> None:
        """A worker's prompt cache changed: count what happened since its last report, size its prefix index."""
        record_prompt_cache(self._metrics, self.spec.name, worker.index, before, now)
        if self._router is not None:
            self._router.resize(worker, now)

    def _forget_cache(self, worker: WorkerHandle) -> None:
        """The worker's process ended, and its slots and prompt cache with it."""
        if self._router is not None:
            self._router.forget(worker)
        if worker.prompt_cache is not None:
            empty = PromptCacheStats(budget_bytes=worker.prompt_cache.budget_bytes)
            record_prompt_cache(self._metrics, self.spec.name, worker.index, empty, empty)

    def _on_worker_change(self, worker: WorkerHandle, kind: WorkerEventKind, reason: str | None) -> None:
        if worker not in self._workers:
            return
        if kind == "died" and self._lifecycle.state in ("stopping", "unloaded"):
            kind = "stopped"
        self._publish(WorkerEvent(self.spec.name, worker.index, kind, worker.pid, reason))
        if kind in ("died", "stopped"):
            self._forget_cache(worker)
        if kind == "ready":
            self._failures[worker.index] = 0
            self._update_state()
            if self.state == "ready":
                log.info(
                    "model %s ready: %d/%d workers hold it (%.1f s)",
                    self.spec.name,
                    self.ready_workers,
                    self.spec.workers,
                    time.monotonic() - self._started_at,
                )
            self._dispatch()
        elif kind == "died":
            self._last_exit[worker.index] = reason
            lasting = worker.load_error is not None and is_permanent(worker.load_error)
            if lasting:
                self._lasting = self._lasting or worker.load_error
            else:
                self._failures[worker.index] += 1
            self._update_state()
            if self.state in ("unhealthy", "failed"):
                self._fail_waiting()
            if lasting:
                return  # loading again would fail the same way; the state change reported it
            delay = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** (self._failures[worker.index] - 1))
            log.warning("%s: worker %d %s; restarting in %.1f s", self.spec.name, worker.index, reason, delay)
            task = asyncio.get_running_loop().create_task(self._restart(worker.index, delay))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)
        else:
            self._update_state()

    def _fail_waiting(self) -> None:
        """Requests queued for a model that will not load soon (unhealthy) or at all (failed) fail now."""
        if self.state == "failed":
            error = ModelFailed(f"Model '{self.spec.name}' could not be loaded: {self.reason}").info()
        else:
            error = ModelUnavailable(f"Model '{self.spec.name}' is unhealthy: {self.reason}").info()
        for item in self._waiting.drain():
            resumed = self._not_resumed(f"the model is {self.state}: {self.reason}") if item.resumed else None
            self._tracker.fail(item.stream.request_id, resumed or error)

    async def _restart(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._lifecycle.state in ("stopping", "unloaded"):
            return
        self._metrics.worker_restarts.labels(self.spec.name).inc()
        self._restarted[index] += 1
        self._workers[index] = self._new_worker(index, restart=True)
        await self._workers[index].start()


def _other_adapters(worker: WorkerHandle, adapter: str | None) -> int:
    """Requests the worker holds that run with another adapter (or the base model, when `adapter` is one)."""
    return sum(
        isinstance(held.message, Submit) and held.message.request.adapter != adapter
        for held in worker.inflight.values()
    )
