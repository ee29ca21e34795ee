"""The supervisor of one model: N warm workers, least-loaded dispatch, restarts.

A request waits (up to the settings' start timeout) for a ready worker, then goes
to the ready worker with the fewest requests in flight. A worker that dies fails
only its own requests and is replaced; one that keeps failing is restarted with
exponential backoff so a broken model cannot eat the machine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid

from warmserve.config import ModelSpec
from warmserve.errors import ErrorInfo, ModelUnavailable
from warmserve.generation import GenerationRequest
from warmserve.pool.messages import Submit, Tokenize
from warmserve.pool.stream import RequestStream
from warmserve.pool.worker_handle import WorkerHandle

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 30.0
_STOP_TIMEOUT_S = 10.0


class ModelPool:
    def __init__(self, spec: ModelSpec, log_level: str, start_timeout_s: float) -> None:
        self.spec = spec
        self._log_level = log_level
        self._start_timeout_s = start_timeout_s
        self._workers: list[WorkerHandle] = []
        self._failures = [0] * spec.workers
        self._load_errors: list[ErrorInfo | None] = [None] * spec.workers
        self._ready_changed = asyncio.Event()
        self._stopping = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._started_at = time.monotonic()
        self._ids = itertools.count()

    @property
    def workers(self) -> list[WorkerHandle]:
        return list(self._workers)

    @property
    def ready_workers(self) -> int:
        return sum(w.state == "ready" for w in self._workers)

    @property
    def fully_ready(self) -> bool:
        return len(self._workers) == self.spec.workers and self.ready_workers == self.spec.workers

    async def start(self) -> None:
        self._started_at = time.monotonic()
        self._workers = [self._new_worker(i) for i in range(self.spec.workers)]
        await asyncio.gather(*(w.start() for w in self._workers))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._restarts:
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(w.stop, _STOP_TIMEOUT_S) for w in self._workers))

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """Send a request to the least-loaded ready worker; its events come on the stream."""
        worker = await self._pick_worker()
        request_id = f"{self.spec.name}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        stream = RequestStream(request_id, worker.cancel)
        worker.submit(stream, Submit(request_id, request))
        log.debug("request %s -> worker %d (%d in flight)", request_id, worker.index, len(worker.inflight))
        return stream

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens, counted by a worker's own tokenizer and chat template."""
        worker = await self._pick_worker()
        request_id = f"{self.spec.name}-tok-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        stream = RequestStream(request_id, worker.cancel)
        worker.submit(stream, Tokenize(request_id, request))
        try:
            return await stream.tokens()
        finally:
            stream.close()

    async def _pick_worker(self) -> WorkerHandle:
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            ready = [w for w in self._workers if w.state == "ready"]
            if ready:
                return min(ready, key=lambda w: len(w.inflight))
            if self._stopping:
                raise ModelUnavailable(f"Model '{self.spec.name}' is shutting down.")
            errors = [e for e in self._load_errors if e is not None]
            if len(errors) == self.spec.workers:
                raise ModelUnavailable(f"Model '{self.spec.name}' failed to load: {errors[0].message}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelUnavailable(f"Model '{self.spec.name}' has no ready worker yet; retry shortly.")
            self._ready_changed.clear()
            try:
                await asyncio.wait_for(self._ready_changed.wait(), remaining)
            except asyncio.TimeoutError:
                continue

    def _new_worker(self, index: int) -> WorkerHandle:
        return WorkerHandle(self.spec, index, self._log_level, self._on_worker_change)

    def _on_worker_change(self, worker: WorkerHandle) -> None:
        self._ready_changed.set()
        if worker.state == "failed":
            self._load_errors[worker.index] = worker.load_error
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
            return
        if worker.exitcode is None or self._stopping or worker not in self._workers:
            return
        self._failures[worker.index] += 1
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

    async def _restart(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping:
            return
        replacement = self._new_worker(index)
        self._workers[index] = replacement
        await replacement.start()
