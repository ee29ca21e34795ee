"""The supervisor of one model: N warm workers, admission, dispatch, restarts.

A request goes straight to the least-loaded ready worker that has a free slot
(engine capacity, capped by `max_running`). Otherwise it waits in a bounded FIFO
(`max_waiting`, else 429) for at most `queue_timeout_s` (else 503), and is sent as
soon as a slot frees. A worker that dies fails only its own requests and is
replaced; one that keeps failing is restarted with exponential backoff, and when
every worker keeps failing to load, the model is reported unhealthy and requests
fail at once instead of queueing for a model that will not come.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable

from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import ErrorInfo, ModelUnavailable, Overloaded, QueueTimeout, ShuttingDown
from warmserve.generation import Failed, Finished, GenerationEvent, GenerationRequest, ModelFacts
from warmserve.metrics import Metrics
from warmserve.pool.admission import Queued, WaitingQueue
from warmserve.pool.core_lending import CoreLending
from warmserve.pool.messages import Detokenize, Embed, Submit, Tokenize
from warmserve.pool.stream import RequestStream
from warmserve.pool.worker_handle import KILL_WAIT_S, WorkerHandle
from warmserve.protocol import ModelState

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 120.0
_UNHEALTHY_AFTER = 3  # consecutive failed starts of every worker
_STOP_TIMEOUT_S = 10.0
# The longest stop() takes once no request is left: each worker is asked to exit, then killed.
STOP_BOUND_S = _STOP_TIMEOUT_S + KILL_WAIT_S


class ModelPool:
    def __init__(self, spec: ModelSpec, log_level: str, metrics: Metrics) -> None:
        self.spec = spec
        self._log_level = log_level
        self._metrics = metrics
        self._workers: list[WorkerHandle] = []
        self._failures = [0] * spec.workers
        self._load_errors: list[ErrorInfo | None] = [None] * spec.workers
        self._waiting = WaitingQueue(spec.queue_timeout_s, self._queue_timed_out)
        self._stopping = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._started_at = time.monotonic()
        self._admitted_at: dict[str, float] = {}
        self._ids = itertools.count()
        # llama.cpp threads can change between steps; other engines and GPUs keep theirs.
        shares_cores = (
            spec.share_idle_cores
            and spec.backend == "llama_cpp"
            and spec.n_gpu_layers == 0
            and spec.threads is None
            and spec.workers > 1
        )
        self._lending = CoreLending(spec.effective_threads(), lambda: self._workers) if shares_cores else None

    # --- state --------------------------------------------------------------------------

    @property
    def workers(self) -> list[WorkerHandle]:
        return list(self._workers)

    @property
    def ready_workers(self) -> int:
        return sum(w.state == "ready" for w in self._workers)

    @property
    def running(self) -> int:
        return sum(len(w.inflight) for w in self._workers)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def facts(self) -> ModelFacts | None:
        """What the engine reported about the model, once a worker has loaded it."""
        return next((w.facts for w in self._workers if w.facts is not None), None)

    @property
    def fully_ready(self) -> bool:
        return self.state == "ready"

    @property
    def state(self) -> ModelState:
        if self._stopping:
            return "stopping"
        if self.ready_workers == self.spec.workers:
            return "ready"
        if self.ready_workers:
            return "degraded"
        if all(f >= _UNHEALTHY_AFTER for f in self._failures):
            return "unhealthy"
        return "loading"

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._started_at = time.monotonic()
        self._workers = [self._new_worker(i) for i in range(self.spec.workers)]
        await asyncio.gather(*(w.start() for w in self._workers))

    async def stop(self) -> None:
        self._stopping = True
        if self._lending is not None:
            self._lending.stop()
        for item in self._waiting.drain():
            item.stream.push(Failed(ShuttingDown(f"Model '{self.spec.name}' is shutting down.").info()))
        for task in self._restarts:
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(w.stop, _STOP_TIMEOUT_S) for w in self._workers))

    # --- requests -----------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """Admit a request: to a free slot now, or to the waiting queue; events come on the stream."""
        self._check_admissible()
        request_id = f"{self.spec.name}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        stream = RequestStream(request_id, self._cancel, self.spec.request_timeout_s, self._timed_out)
        message = Submit(request_id, request)
        worker = self._free_worker() if not len(self._waiting) else None
        if worker is not None:
            self._send(worker, stream, message)
        elif len(self._waiting) >= self.spec.max_waiting:
            stream.close()
            self._metrics.rejected.labels(self.spec.name, "overloaded").inc()
            raise Overloaded(
                f"Model '{self.spec.name}' is at capacity: {self.running} running and "
                f"{len(self._waiting)} waiting. Retry after a moment."
            )
        else:
            self._waiting.push(Queued(stream, message))
        return stream

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens, counted by a worker's own tokenizer; never queued behind generations."""
        stream = self._ask_worker(lambda request_id: Tokenize(request_id, request))
        try:
            return await stream.tokens()
        finally:
            stream.close()

    async def detokenize(self, tokens: list[int]) -> str:
        stream = self._ask_worker(lambda request_id: Detokenize(request_id, tuple(tokens)))
        try:
            return await stream.text()
        finally:
            stream.close()

    def _ask_worker(self, message: Callable[[str], Tokenize | Detokenize]) -> RequestStream:
        """Send a quick question to the least busy ready worker, which answers between steps."""
        worker = self._least_busy_worker()
        request_id = f"{self.spec.name}-tok-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        stream = RequestStream(request_id, self._cancel, self.spec.request_timeout_s)
        worker.submit(stream, message(request_id))
        return stream

    async def embed(self, request: EmbedRequest) -> Embedded:
        """Vectors from the least-busy ready worker, which computes them between its generation steps."""
        worker = self._least_busy_worker()
        request_id = f"{self.spec.name}-emb-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        stream = RequestStream(request_id, self._cancel, self.spec.request_timeout_s, self._timed_out)
        worker.submit(stream, Embed(request_id, request))
        try:
            return await stream.embedded()
        finally:
            stream.close()

    def _least_busy_worker(self) -> WorkerHandle:
        """For work that skips the generation queue (tokenize, embed): any ready worker will do."""
        self._check_admissible()
        ready = [w for w in self._workers if w.state == "ready"]
        if not ready:
            raise ModelUnavailable(f"Model '{self.spec.name}' has no ready worker yet; retry shortly.")
        return min(ready, key=lambda w: len(w.inflight))

    def _check_admissible(self) -> None:
        if self._stopping:
            raise ShuttingDown(f"Model '{self.spec.name}' is shutting down.")
        if self.state == "unhealthy":
            error = next((e for e in self._load_errors if e is not None), None)
            reason = error.message if error else "its workers keep failing"
            raise ModelUnavailable(f"Model '{self.spec.name}' is unhealthy: {reason}")

    def _free_worker(self) -> WorkerHandle | None:
        limit = self.spec.max_running
        if limit and self.running >= limit:
            return None
        free = [w for w in self._workers if w.state == "ready" and len(w.inflight) < w.capacity]
        return min(free, key=lambda w: len(w.inflight)) if free else None

    def _send(self, worker: WorkerHandle, stream: RequestStream, message: Submit) -> None:
        self._admitted_at[stream.request_id] = time.monotonic()
        if self._lending is not None:
            self._lending.balance(also_busy=worker)
        worker.submit(stream, message)
        log.debug("request %s -> worker %d (%d in flight)", stream.request_id, worker.index, len(worker.inflight))

    def _dispatch(self) -> None:
        while len(self._waiting) and (worker := self._free_worker()) is not None:
            item = self._waiting.pop()
            if item is not None:
                self._send(worker, item.stream, item.message)

    def _cancel(self, request_id: str) -> None:
        cancelled = self._waiting.remove(request_id) or any(w.cancel(request_id) for w in self._workers)
        if cancelled:
            self._metrics.cancelled.labels(self.spec.name).inc()

    def _timed_out(self, request_id: str) -> None:
        self._metrics.timed_out.labels(self.spec.name).inc()

    def _queue_timed_out(self, item: Queued) -> None:
        self._metrics.rejected.labels(self.spec.name, "queue_timeout").inc()
        waited = self.spec.queue_timeout_s
        item.stream.push(
            Failed(QueueTimeout(f"The request waited {waited:g} s for a free slot on '{self.spec.name}'.").info())
        )

    def _on_request_done(self, worker: WorkerHandle, request_id: str, event: GenerationEvent | None) -> None:
        admitted = self._admitted_at.pop(request_id, None)
        if isinstance(event, Embedded):
            self._metrics.prompt_tokens.labels(self.spec.name).inc(event.prompt_tokens)
        if isinstance(event, Finished):
            name = self.spec.name
            self._metrics.prompt_tokens.labels(name).inc(event.prompt_tokens)
            self._metrics.completion_tokens.labels(name).inc(event.completion_tokens)
            self._metrics.cached_tokens.labels(name).inc(event.cached_tokens)
            if admitted is not None:
                self._metrics.request_seconds.labels(name).observe(time.monotonic() - admitted)
        self._dispatch()
        if self._lending is not None:
            self._lending.balance()

    # --- workers ------------------------------------------------------------------------

    def _new_worker(self, index: int) -> WorkerHandle:
        return WorkerHandle(self.spec, index, self._log_level, self._on_worker_change, self._on_request_done)

    def _on_worker_change(self, worker: WorkerHandle) -> None:
        if worker.state == "ready":
            self._failures[worker.index] = 0
            self._load_errors[worker.index] = None
            if self.fully_ready:
                log.info(
                    "model %s ready: %d/%d workers hold it (%.1f s)",
                    self.spec.name,
                    self.ready_workers,
                    self.spec.workers,
                    time.monotonic() - self._started_at,
                )
            self._dispatch()
            return
        if worker.state == "failed":
            self._load_errors[worker.index] = worker.load_error
        if worker.exitcode is None or self._stopping or worker not in self._workers:
            return
        self._failures[worker.index] += 1
        if self.state == "unhealthy":
            self._fail_waiting()
        delay = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** (self._failures[worker.index] - 1))
        log.warning(
            "%s: worker %d exited (code %s); restarting in %.1f s",
            self.spec.name,
            worker.index,
            worker.exitcode,
            delay,
        )
        task = asyncio.get_running_loop().create_task(self._restart(worker.index, delay))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    def _fail_waiting(self) -> None:
        for item in self._waiting.drain():
            try:
                self._check_admissible()
            except ModelUnavailable as exc:
                item.stream.push(Failed(exc.info()))

    async def _restart(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping:
            return
        self._metrics.worker_restarts.labels(self.spec.name).inc()
        replacement = self._new_worker(index)
        self._workers[index] = replacement
        try:
            await replacement.start()
        except Exception:  # a failed spawn counts as a failed start and is retried
            log.exception("%s: could not start worker %d", self.spec.name, index)
            replacement.state = "failed"
            replacement.exitcode = -1
            self._on_worker_change(replacement)
