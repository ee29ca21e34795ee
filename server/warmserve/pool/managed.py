"""One served model whose workers can come and go while the server runs.

`ManagedModel` is what `PoolManager.get` hands to the routes. It wraps the model's pool
(built by the pool factory, a fresh one per load) and adds what the pool itself does not
know about: being unloaded, loading lazily on the first request, unloading after an idle
period, and draining before an unload.

    unloaded --load(), or a request if lazy / idle_unload_s--> loaded (the pool's own state: loading, ready, ...)
    loaded --unload()--> draining --(requests in flight done, or drain timeout)--> stopping --> unloaded

Races with requests are closed by the event loop: `submit` checks the phase and hands the
request to the pool without awaiting in between, so a request is either in the pool (and the
drain waits for it) or sees `draining` and gets 503 `model_unloading`. A request that waits for
a lazy load counts as waiting, so drains (SIGTERM's too) and the idle timer see it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import ModelNotLoaded, ModelUnavailable, ModelUnloading, QueueTimeout
from warmserve.generation import Failed, GenerationRequest, ModelFacts
from warmserve.metrics import Metrics
from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.stream import RequestStream
from warmserve.pool.supervisor import ModelPool
from warmserve.pool.worker_handle import WorkerHandle
from warmserve.protocol import ModelState

log = logging.getLogger(__name__)

Phase = Literal["unloaded", "loaded", "draining", "stopping", "removed"]
_POLL_S = 0.05  # the pool reports no events for "drained" or "ready"; we look this often
_IDLE_CHECK_MAX_S = 1.0


class ManagedModel:
    """A model's pool behind load / unload (see the module docstring); itself a `Pool`."""

    def __init__(self, spec: ModelSpec, make_pool: PoolFactory, metrics: Metrics, source: str = "config") -> None:
        self.spec = spec
        self.source = source  # "config" or "admin": where the model came from
        self._make_pool = make_pool
        self._metrics = metrics
        self._pool: Pool | None = None
        self._phase: Phase = "unloaded"
        self._starting: asyncio.Task[None] | None = None
        self._unloading: asyncio.Task[None] | None = None
        self._idle_watch: asyncio.Task[None] | None = None
        self._pending = 0  # requests waiting for a lazy load to spawn the workers
        self._removing = False  # the unload under way ends in `removed`, never loads again
        self._idle_unload = False  # the unload under way is for idleness: requests wait, then load again
        self._last_used = time.monotonic()
        self._facts: ModelFacts | None = None

    # --- state --------------------------------------------------------------------------

    @property
    def pool(self) -> Pool | None:
        """The pool while the model is loaded (or draining), else None."""
        return self._pool

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def state(self) -> ModelState:
        if self._phase == "loaded" and self._pool is not None:
            return self._pool.state
        if self._phase in ("draining", "stopping"):
            return self._phase
        return "unloaded"

    @property
    def ready_workers(self) -> int:
        return self._pool.ready_workers if self._pool is not None else 0

    @property
    def facts(self) -> ModelFacts | None:
        """What the engine last reported, kept while the model is unloaded."""
        if self._pool is not None and self._pool.facts is not None:
            self._facts = self._pool.facts
        return self._facts

    @property
    def running(self) -> int:
        return self._pool.running if self._pool is not None else 0

    @property
    def waiting(self) -> int:
        return self._pending + (self._pool.waiting if self._pool is not None else 0)

    @property
    def workers(self) -> list[WorkerHandle]:
        """The worker processes, where the pool runs them locally."""
        return self._pool.workers if isinstance(self._pool, ModelPool) else []

    @property
    def on_demand(self) -> bool:
        """Whether a request loads the model when it is unloaded (lazy, or unloaded when idle)."""
        return self.spec.lazy or self.spec.idle_unload_s is not None

    @property
    def idle_s(self) -> float:
        return time.monotonic() - self._last_used

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Server start: load unless the model is lazy."""
        if not self.spec.lazy:
            await self.load()

    async def load(self) -> None:
        """Start the workers (returns once they are spawned, not loaded); a no-op when loaded."""
        if self._phase in ("draining", "stopping"):
            raise ModelUnloading(f"Model '{self.spec.name}' is being unloaded; load it again once it is unloaded.")
        if self._phase == "removed" or self._removing:
            raise ModelUnloading(f"Model '{self.spec.name}' was removed.")
        if self._phase == "unloaded":
            self._pool = self._make_pool(self.spec, self._metrics)
            self._phase = "loaded"
            self._last_used = time.monotonic()
            self._starting = asyncio.get_running_loop().create_task(self._start_pool(self._pool))
            log.info("model %s: loading", self.spec.name)
        assert self._starting is not None
        await asyncio.shield(self._starting)

    async def _start_pool(self, pool: Pool) -> None:
        try:
            await pool.start()
        except Exception as exc:
            log.exception("model %s: could not start its workers", self.spec.name)
            if self._pool is pool and self._phase == "loaded":
                self._pool, self._phase = None, "unloaded"
            await pool.stop()
            raise ModelUnavailable(f"Model '{self.spec.name}' could not start its workers: {exc}") from exc
        if self.spec.idle_unload_s is not None and self._pool is pool:
            self._idle_watch = asyncio.get_running_loop().create_task(self._unload_when_idle(self.spec.idle_unload_s))

    async def wait_loaded(self, timeout_s: float) -> ModelState:
        """Wait until every worker holds the model, or the load fails; the state it reached."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.state in ("loading", "degraded"):  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)
        return self.state

    def unload(self, drain_timeout_s: float, remove: bool = False, idle: bool = False) -> asyncio.Task[None]:
        """Stop taking requests now; stop the workers once those in flight finish (or the timeout).

        Returns the unload's task; a second call while one runs joins it. With `remove`, the model
        ends `removed` (its manager then forgets the name) instead of `unloaded`. An `idle` unload
        (nothing in flight) makes a request that comes meanwhile wait and load the model again.
        """
        self._removing = self._removing or remove
        self._idle_unload = idle and (self._idle_unload or self._unloading is None or self._unloading.done())
        if self._unloading is None or self._unloading.done():
            if self._phase == "loaded":
                self._phase = "draining"  # now, not when the task first runs: new requests are refused
                self._stop_idle_watch()
            elif self._phase == "unloaded" and self._removing:
                self._phase = "removed"
            self._unloading = asyncio.get_running_loop().create_task(self._unload(drain_timeout_s))
        return self._unloading

    async def _unload(self, drain_timeout_s: float) -> None:
        pool = self._pool
        if pool is None or self._phase != "draining":
            return
        log.info("model %s: draining %d running, %d waiting", self.spec.name, pool.running, pool.waiting)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        deadline = time.monotonic() + drain_timeout_s
        while (pool.running or pool.waiting) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)
        if pool.running or pool.waiting:
            log.warning(
                "model %s: drain timeout (%.0f s); stopping with %d requests in flight",
                self.spec.name,
                drain_timeout_s,
                pool.running + pool.waiting,
            )
            self._fail_running(pool, drain_timeout_s)
        self._phase = "stopping"
        try:
            await pool.stop()
        finally:
            self._pool, self._starting = None, None
            self._phase = "removed" if self._removing else "unloaded"
        log.info("model %s: unloaded", self.spec.name)

    def _fail_running(self, pool: Pool, drain_timeout_s: float) -> None:
        """Tell requests cut off by the drain timeout why (rather than 'worker died, retry')."""
        if not isinstance(pool, ModelPool):
            return
        message = (
            f"Model '{self.spec.name}' was unloaded before the request finished (drain timeout {drain_timeout_s:g} s)."
        )
        error = ModelUnloading(message).info()
        for worker in pool.workers:
            for request_id, stream in list(worker.inflight.items()):
                stream.push(Failed(error))
                worker.cancel(request_id)

    async def stop(self) -> None:
        """Server stop: no drain here (the server drained already); stop the workers."""
        self._removing, self._idle_unload = True, False
        self._stop_idle_watch()
        pool, starting = self._pool, self._starting
        if self._unloading is not None and not self._unloading.done():
            self._unloading.cancel()
            await asyncio.gather(self._unloading, return_exceptions=True)
        self._phase = "stopping"
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        try:
            if pool is not None:
                await pool.stop()
        finally:
            self._pool, self._starting, self._phase = None, None, "removed"

    def _stop_idle_watch(self) -> None:
        if self._idle_watch is not None and self._idle_watch is not asyncio.current_task():
            self._idle_watch.cancel()
        self._idle_watch = None

    async def _unload_when_idle(self, idle_s: float) -> None:
        check_s = min(idle_s / 4, _IDLE_CHECK_MAX_S)
        while self._phase == "loaded":
            await asyncio.sleep(check_s)
            if self.running or self.waiting or self.state == "loading":
                self._last_used = time.monotonic()
            elif self._phase == "loaded" and self.idle_s >= idle_s:
                log.info("model %s: idle for %.0f s, unloading", self.spec.name, self.idle_s)
                self._idle_watch = None
                self.unload(drain_timeout_s=0, idle=True)
                return

    # --- requests -----------------------------------------------------------------------

    async def _loaded_pool(self) -> Pool:
        """The pool to send a request to, loading a lazy model first."""
        unloading = self._unloading
        if self._phase in ("draining", "stopping") and self._idle_unload and unloading and not unloading.done():
            self._pending += 1
            try:
                await asyncio.gather(asyncio.shield(unloading), return_exceptions=True)
            finally:
                self._pending -= 1
            return await self._loaded_pool()
        if self._phase in ("draining", "stopping"):
            raise ModelUnloading(f"Model '{self.spec.name}' is being unloaded and takes no new requests.")
        if self._phase == "removed" or self._removing:
            raise ModelUnloading(f"Model '{self.spec.name}' was unloaded and removed.")
        if self._phase == "unloaded":
            if not self.on_demand:
                raise ModelNotLoaded(
                    f"Model '{self.spec.name}' is not loaded. Load it with POST /admin/models/{self.spec.name}/load."
                )
            self._pending += 1
            try:
                await self.load()
            finally:
                self._pending -= 1
            return await self._loaded_pool()  # the phase may have changed while we waited
        assert self._pool is not None
        if self._starting is not None and not self._starting.done():
            self._pending += 1
            try:
                await asyncio.shield(self._starting)
            finally:
                self._pending -= 1
            return await self._loaded_pool()
        self._last_used = time.monotonic()
        return self._pool

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """To the pool; a lazy model's first request waits in the pool's queue while it loads."""
        pool = await self._loaded_pool()
        return await pool.submit(request)  # no await point before the pool admits it

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        return await (await self._ready_pool()).tokenize(request)

    async def detokenize(self, tokens: list[int]) -> str:
        return await (await self._ready_pool()).detokenize(tokens)

    async def embed(self, request: EmbedRequest) -> Embedded:
        return await (await self._ready_pool()).embed(request)

    async def _ready_pool(self) -> Pool:
        """A pool with a loaded worker, for the quick questions that skip the request queue."""
        pool = await self._loaded_pool()
        if pool.state == "loading":
            self._pending += 1
            try:
                state = await self.wait_loaded(self.spec.queue_timeout_s)
            finally:
                self._pending -= 1
            if state == "loading":
                raise QueueTimeout(
                    f"Model '{self.spec.name}' did not load within {self.spec.queue_timeout_s:g} s; retry shortly."
                )
            pool = await self._loaded_pool()
        return pool
