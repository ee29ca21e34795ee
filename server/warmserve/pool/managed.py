"""One served model whose workers can come and go while the server runs.

`ManagedModel` is what `PoolManager.get` hands to the routes. It wraps the model's pool
(built by the pool factory, a fresh one per load) and adds what the pool itself does not
know about: being unloaded, loading lazily on the first request, unloading after an idle
period, and draining before an unload. Its state is the model's `Lifecycle`: while loaded it
follows the pool's own (loading, ready, degraded, unhealthy, failed), then draining, stopping and
unloaded; every change is published to the app's event hub.

It also owns the model's LoRA adapters (`AdapterSet`): added and removed at run time, loaded
by the pool's workers while the model is loaded and kept in its spec for the next load. Removing
one drains the requests on it first, as an unload drains the model's.

Races with requests are closed by the event loop: `submit` checks the state (and the request's
adapter) and hands the request to the pool without awaiting in between, so a request is either
in the pool (and the drain waits for it) or sees `draining` and gets 503 `model_unloading`. A
request that waits for a lazy load counts as waiting, so drains (SIGTERM's too) and the idle
timer see it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from warmserve.adapters import AdapterSpec, adapter_error
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import InvalidRequest, ModelNotLoaded, ModelUnavailable, ModelUnloading, QueueTimeout
from warmserve.generation import GenerationRequest, ModelFacts
from warmserve.hub import DownloadStatus
from warmserve.metrics import Metrics
from warmserve.pool.adapter_set import AdapterSet
from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.events import PoolEvent, Publish, StateChanged, WorkerStatus
from warmserve.pool.lifecycle import Lifecycle, Stateful
from warmserve.pool.stream import RequestStream
from warmserve.pool.watch import Watched
from warmserve.protocol import ModelState

log = logging.getLogger(__name__)

_LOADED: frozenset[ModelState] = frozenset({"loading", "ready", "degraded", "unhealthy", "failed"})
_UNLOADING: frozenset[ModelState] = frozenset({"draining", "stopping"})


@dataclass
class _Unload:
    task: asyncio.Task[None]
    remove: bool  # ends `removed`: the manager forgets the name and it never loads again
    reload: bool  # an idle unload: requests that come meanwhile wait, then load the model again


class ManagedModel(Stateful):
    """A model's pool behind load / unload (see the module docstring); itself a `Pool`."""

    def __init__(
        self, spec: ModelSpec, make_pool: PoolFactory, metrics: Metrics, publish: Publish, source: str = "config"
    ) -> None:
        self.spec = spec
        self.source = source  # "config" or "admin": where the model came from
        self._make_pool = make_pool
        self._metrics = metrics
        self._publish = publish
        self._lifecycle = Lifecycle(spec.name, publish)
        self._pool: Pool | None = None
        self._loads = 0  # which load the current pool belongs to; events of older pools are ignored
        self._starting: asyncio.Task[None] | None = None
        self._unload: _Unload | None = None
        self._removed = False
        self._idle_watch: asyncio.Task[None] | None = None
        self._pending: Watched[int] = Watched(0)  # requests waiting for a load to spawn the workers
        self._last_used = time.monotonic()
        self._facts: ModelFacts | None = None
        self.adapters = AdapterSet(spec.adapters)

    # --- state --------------------------------------------------------------------------

    @property
    def pool(self) -> Pool | None:
        """The pool while the model is loaded (or draining), else None."""
        return self._pool

    @property
    def removed(self) -> bool:
        return self._removed

    @property
    def ready_workers(self) -> int:
        return self._pool.ready_workers if self._pool is not None else 0

    @property
    def workers(self) -> list[WorkerStatus]:
        return self._pool.workers if self._pool is not None else []

    @property
    def facts(self) -> ModelFacts | None:
        """What the engine last reported, kept while the model is unloaded."""
        if self._pool is not None and self._pool.facts is not None:
            self._facts = self._pool.facts
        return self._facts

    @property
    def download(self) -> DownloadStatus | None:
        """How far a hub model's download has come, while its pool fetches it."""
        return self._pool.download if self._pool is not None else None

    @property
    def running(self) -> int:
        return self._pool.running if self._pool is not None else 0

    @property
    def waiting(self) -> int:
        return self._pending.value + (self._pool.waiting if self._pool is not None else 0)

    @property
    def in_flight(self) -> Watched[int]:
        """The pool's requests in flight (an unloaded model has none)."""
        return self._pool.in_flight if self._pool is not None else Watched(0)

    @property
    def on_demand(self) -> bool:
        """Whether a request loads the model when it is unloaded (lazy, or unloaded when idle)."""
        return self.spec.lazy or self.spec.idle_unload_s is not None

    @property
    def idle_s(self) -> float:
        return time.monotonic() - self._last_used

    async def wait_loaded(self, timeout_s: float) -> ModelState:
        """Wait until every worker holds the model, or the load fails; the state it reached."""
        return await self._lifecycle.wait_while(("loading", "degraded"), timeout_s)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight or waiting for a load; False if `timeout_s` ran out first."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight.value or self._pending.value:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self.in_flight.wait_for(lambda n: n == 0, left)
            await self._pending.wait_for(lambda n: n == 0, max(0.0, deadline - time.monotonic()))
        return True

    def _from_pool(self, load: int) -> Publish:
        """What the pool of load number `load` publishes: worker events pass, its state becomes ours."""

        def publish(event: PoolEvent) -> None:
            if isinstance(event, StateChanged):
                if load == self._loads and self.state in _LOADED and event.state in _LOADED:
                    self._lifecycle.move(event.state, event.reason)
            else:
                self._publish(event)

        return publish

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Server start: load unless the model is lazy."""
        if not self.spec.lazy:
            await self.load()

    async def load(self) -> None:
        """Start the workers (returns once they are spawned, not loaded); a no-op when loaded, except that a
        model that failed for good starts over (an admin fixed its file)."""
        if self.state == "failed":
            await self.unload(drain_timeout_s=0)
        if self.state in _UNLOADING:
            raise ModelUnloading(f"Model '{self.spec.name}' is being unloaded; load it again once it is unloaded.")
        if self._removed or (self._unload is not None and self._unload.remove):
            raise ModelUnloading(f"Model '{self.spec.name}' was removed.")
        if self.state == "unloaded":
            self._loads += 1
            self._pool = self._make_pool(self.spec, self._metrics, self._from_pool(self._loads))
            self._lifecycle.move("loading")
            self._last_used = time.monotonic()
            self._starting = asyncio.get_running_loop().create_task(self._start_pool(self._pool))
        assert self._starting is not None
        await asyncio.shield(self._starting)

    async def _start_pool(self, pool: Pool) -> None:
        try:
            await pool.start()
        except Exception as exc:
            log.exception("model %s: could not start its workers", self.spec.name)
            if self._pool is pool and self.state in _LOADED:
                self._lifecycle.move("stopping", f"could not start its workers: {exc}")
                self._pool = None
                await pool.stop()
                self._lifecycle.move("unloaded", f"could not start its workers: {exc}")
            else:
                await pool.stop()
            raise ModelUnavailable(f"Model '{self.spec.name}' could not start its workers: {exc}") from exc
        if self.spec.idle_unload_s is not None and self._pool is pool:
            self._idle_watch = asyncio.get_running_loop().create_task(self._unload_when_idle(pool))

    def unload(self, drain_timeout_s: float, remove: bool = False, idle: bool = False) -> asyncio.Task[None]:
        """Stop taking requests now; stop the workers once those in flight finish (or the timeout).

        Returns the unload's task; a second call while one runs joins it (a `remove` sticks). With
        `remove`, the model ends removed (its manager then forgets the name) instead of unloaded. An
        `idle` unload (nothing in flight) makes a request that comes meanwhile wait and load again.
        """
        if self._unload is not None and not self._unload.task.done():
            self._unload.remove = self._unload.remove or remove
            self._unload.reload = self._unload.reload and idle and not self._unload.remove
            return self._unload.task
        if self.state in _LOADED:
            self._lifecycle.move("draining")  # now, not when the task first runs: new requests are refused
            self._stop_idle_watch()
        task = asyncio.get_running_loop().create_task(self._drain_and_stop(drain_timeout_s))
        self._unload = _Unload(task, remove=remove, reload=idle and not remove)
        return task

    async def _drain_and_stop(self, drain_timeout_s: float) -> None:
        pool = self._pool
        try:
            if pool is None or self.state != "draining":
                return
            log.info("model %s: draining %d running, %d waiting", self.spec.name, pool.running, pool.waiting)
            if self._starting is not None:
                await asyncio.gather(self._starting, return_exceptions=True)
            left = await pool.in_flight.wait_for(lambda n: n == 0, drain_timeout_s)
            if left:
                log.warning(
                    "model %s: drain timeout (%.0f s); stopping with %d requests in flight",
                    self.spec.name,
                    drain_timeout_s,
                    left,
                )
                message = (
                    f"Model '{self.spec.name}' was unloaded before the request finished "
                    f"(drain timeout {drain_timeout_s:g} s)."
                )
                pool.fail_all(ModelUnloading(message))
            self._lifecycle.move("stopping")
            try:
                await pool.stop()
            finally:
                self._pool, self._starting = None, None
                self._lifecycle.move("unloaded")
        finally:
            assert self._unload is not None
            self._removed = self._removed or self._unload.remove

    async def stop(self) -> None:
        """Server stop: no drain here (the server drained already); stop the workers."""
        self._removed = True
        self._stop_idle_watch()
        starting = self._starting
        if self._unload is not None and not self._unload.task.done():
            self._unload.reload = False
            if self.state == "stopping":  # its workers are being stopped already: let it finish
                await asyncio.gather(self._unload.task, return_exceptions=True)
            else:
                self._unload.task.cancel()
                await asyncio.gather(self._unload.task, return_exceptions=True)
        pool = self._pool
        if pool is None:
            return
        self._lifecycle.move("stopping")
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        try:
            await pool.stop()
        finally:
            self._pool, self._starting = None, None
            self._lifecycle.move("unloaded")

    def _stop_idle_watch(self) -> None:
        if self._idle_watch is not None and self._idle_watch is not asyncio.current_task():
            self._idle_watch.cancel()
        self._idle_watch = None

    async def _unload_when_idle(self, pool: Pool) -> None:
        """Unload once nothing has come for `idle_unload_s`: woken by the last request ending, then a timer
        to the moment the model will have been idle that long."""
        idle_s = self.spec.idle_unload_s
        assert idle_s is not None
        while self._pool is pool and self.state in _LOADED:
            if self.state == "loading":  # loading is activity: the idle time starts once it is done
                await self._lifecycle.wait_while(("loading",))
                self._last_used = max(self._last_used, time.monotonic())
                continue
            await pool.in_flight.wait_for(lambda n: n == 0)
            quiet_since = max(self._last_used, pool.in_flight.changed_at)  # the last arrival, or the last end
            await asyncio.sleep(max(0.0, quiet_since + idle_s - time.monotonic()))
            if self._pool is not pool or self.state not in _LOADED:
                return
            if self._pending.value:
                self._last_used = max(self._last_used, time.monotonic())
            elif not pool.in_flight.value and max(self._last_used, pool.in_flight.changed_at) == quiet_since:
                log.info("model %s: idle for %.0f s, unloading", self.spec.name, self.idle_s)
                self._idle_watch = None
                self.unload(drain_timeout_s=0, idle=True)
                return

    # --- adapters -----------------------------------------------------------------------

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Serve a LoRA adapter: returns once every worker holds it, or at once while the model is unloaded
        (registered, it loads with the model). A bad adapter raises its 400 and leaves everything as it was."""
        problem = adapter.file_problem(self.spec.backend)
        if problem is not None:
            raise InvalidRequest(adapter_error(adapter.name, problem), param="path")
        self.adapters.begin_add(adapter)
        self._keep_adapters([*self.adapters.served, adapter])  # a pool made meanwhile loads it too
        pool = self._pool if self.state in _LOADED else None
        loaded = False
        try:
            if pool is not None:
                await pool.add_adapter(adapter)
            loaded = True
        finally:
            self.adapters.end_add(adapter, loaded)
            self._keep_adapters(self.adapters.served)
        log.info("model %s: adapter %s %s", self.spec.name, adapter.name, "loaded" if pool else "registered")

    async def remove_adapter(self, name: str, drain_timeout_s: float = 0.0) -> None:
        """Turn new requests on the adapter away, let those in flight finish (up to the timeout), then unload it."""
        self.adapters.begin_remove(name)
        removed = False
        try:
            pool = self._pool
            if pool is not None:
                left = await pool.adapter_in_flight(name).wait_for(lambda n: n == 0, drain_timeout_s)
                if left:
                    log.warning("model %s: adapter %s drain timeout; failing %d requests", self.spec.name, name, left)
                    message = f"The adapter '{name}' was removed before the request finished."
                    pool.fail_adapter(name, ModelUnloading(message))
            self._keep_adapters([a for a in self.adapters.served if a.name != name])
            if self._pool is not None:  # the pool now, which a drain may have replaced
                await self._pool.remove_adapter(name)
            removed = True
        finally:
            self.adapters.end_remove(name, removed)
            self._keep_adapters(self.adapters.served)
        log.info("model %s: adapter %s removed", self.spec.name, name)

    def adapter_in_flight(self, adapter: str) -> Watched[int]:
        return self._pool.adapter_in_flight(adapter) if self._pool is not None else Watched(0)

    def fail_adapter(self, adapter: str, error: ModelUnavailable) -> None:
        if self._pool is not None:
            self._pool.fail_adapter(adapter, error)

    def _keep_adapters(self, adapters: list[AdapterSpec]) -> None:
        """The spec's adapters, which the next load starts its workers with."""
        self.spec = self.spec.model_copy(update={"adapters": adapters})

    # --- requests -----------------------------------------------------------------------

    async def _waiting_for(self, work: asyncio.Future[None] | asyncio.Task[None]) -> None:
        """Wait for a load or an unload to end, counted as a waiting request."""
        self._pending.set(self._pending.value + 1)
        try:
            await asyncio.gather(asyncio.shield(work), return_exceptions=True)
        finally:
            self._pending.set(self._pending.value - 1)

    async def _loaded_pool(self) -> Pool:
        """The pool to send a request to, loading a lazy model first."""
        unload = self._unload
        if self.state in _UNLOADING and unload is not None and unload.reload and not unload.task.done():
            await self._waiting_for(unload.task)
            return await self._loaded_pool()
        if self.state in _UNLOADING:
            raise ModelUnloading(f"Model '{self.spec.name}' is being unloaded and takes no new requests.")
        if self._removed or (unload is not None and unload.remove):
            raise ModelUnloading(f"Model '{self.spec.name}' was unloaded and removed.")
        if self.state == "unloaded":
            if not self.on_demand:
                raise ModelNotLoaded(
                    f"Model '{self.spec.name}' is not loaded. Load it with POST /admin/models/{self.spec.name}/load."
                )
            self._pending.set(self._pending.value + 1)
            try:
                await self.load()
            finally:
                self._pending.set(self._pending.value - 1)
            return await self._loaded_pool()  # the state may have changed while we waited
        assert self._pool is not None
        if self._starting is not None and not self._starting.done():
            await self._waiting_for(self._starting)
            return await self._loaded_pool()
        self._last_used = time.monotonic()
        return self._pool

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """To the pool; a lazy model's first request waits in the pool's queue while it loads."""
        pool = await self._loaded_pool()
        if request.adapter is not None:
            self.adapters.check(request.adapter, self.spec.name)
        return await pool.submit(request)  # no await point before the pool admits it

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        return await (await self._ready_pool()).tokenize(request)

    async def detokenize(self, tokens: list[int]) -> str:
        return await (await self._ready_pool()).detokenize(tokens)

    async def embed(self, request: EmbedRequest) -> Embedded:
        return await (await self._ready_pool()).embed(request)

    def fail_all(self, error: ModelUnavailable) -> None:
        if self._pool is not None:
            self._pool.fail_all(error)

    async def _ready_pool(self) -> Pool:
        """A pool with a loaded worker, for the quick questions that skip the request queue."""
        pool = await self._loaded_pool()
        if pool.state == "loading":
            self._pending.set(self._pending.value + 1)
            try:
                state = await self._lifecycle.wait_while(("loading",), self.spec.queue_timeout_s)
            finally:
                self._pending.set(self._pending.value - 1)
            if state == "loading":
                raise QueueTimeout(
                    f"Model '{self.spec.name}' did not load within {self.spec.queue_timeout_s:g} s; retry shortly."
                )
            pool = await self._loaded_pool()
        return pool
