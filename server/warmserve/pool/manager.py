"""All served models: one `ManagedModel` per name, loaded, unloaded, added and removed at run time.

By default each model's pool is a `ModelPool` of local worker processes; `make_pool` builds another
kind (Ray Serve replicas, or the in-process fake of the API tests) behind the same interface. With
Ray the set of models is fixed: Serve owns the deployments, so run-time changes are refused
(`manageable` is False). Every model's state
changes and worker events go to one `EventHub`, which `subscribe` hands out.

A model's LoRA adapters are model ids too: `route` resolves a request's `model` to a model, or to
an `AdapterModel` view of the model that serves that adapter. Names are unique across both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec, ServerSettings
from warmserve.errors import ModelExists, ModelNotFound, NotSupported
from warmserve.metrics import Metrics
from warmserve.pool.adapter_view import AdapterModel
from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.events import EventHub, ModelStatus, PoolEvent, Publish, Snapshot
from warmserve.pool.managed import ManagedModel
from warmserve.pool.supervisor import ModelPool

# A model counts as serving when it is loaded with a ready worker, or deliberately has none.
_SERVING = ("ready", "degraded", "unloaded", "draining", "stopping")


class PoolManager:
    def __init__(
        self,
        settings: ServerSettings,
        metrics: Metrics,
        make_pool: PoolFactory | None = None,
        manageable: bool = True,
    ) -> None:
        self.created = int(time.time())
        self.manageable = manageable
        if make_pool is None:

            def make_pool(spec: ModelSpec, metrics: Metrics, publish: Publish) -> Pool:
                return ModelPool(spec, settings.log_level, metrics, publish)

        self._make_pool = make_pool
        self._metrics = metrics
        self.events = EventHub(self.snapshot)
        # Mutated only on the event loop; readers that may run elsewhere (metrics) take a snapshot.
        self.pools: dict[str, ManagedModel] = {spec.name: self._managed(spec, "config") for spec in settings.models}
        self._background: set[asyncio.Task[None]] = set()
        metrics.watch_pools(self._gauges)

    def _managed(self, spec: ModelSpec, source: str) -> ManagedModel:
        return ManagedModel(spec, self._make_pool, self._metrics, self.events.publish, source)

    def get(self, model: str) -> ManagedModel:
        """A model by name (not an adapter's id: see `route`)."""
        pool = self.pools.get(model)
        if pool is None:
            available = ", ".join(sorted(self.pools)) or "none"
            raise ModelNotFound(f"The model '{model}' does not exist. Models served here: {available}.", param="model")
        return pool

    def route(self, model: str) -> Pool:
        """Where a request for `model` goes: the model, or a view of the model serving the adapter of that id."""
        managed = self.pools.get(model)
        if managed is not None:
            return managed
        for base in list(self.pools.values()):
            adapter = base.adapters.get(model)
            if adapter is not None:
                return AdapterModel(base, adapter)
        adapters = [a.name for base in list(self.pools.values()) for a in base.adapters.served]
        available = ", ".join([*sorted(self.pools), *sorted(adapters)]) or "none"
        raise ModelNotFound(f"The model '{model}' does not exist. Models served here: {available}.", param="model")

    def adapters(self) -> list[AdapterModel]:
        """Every adapter served, as the model id it is."""
        return [AdapterModel(base, adapter) for base in list(self.pools.values()) for adapter in base.adapters.served]

    def _check_name_free(self, name: str, param: str) -> None:
        """Models and adapters share one namespace: a taken name is a 409."""
        if name in self.pools:
            raise ModelExists(f"A model named '{name}' exists already; choose another name.", param=param)
        owner = next((m for m in list(self.pools.values()) if name in m.adapters.names), None)
        if owner is not None:
            raise ModelExists(
                f"'{name}' is an adapter of model '{owner.spec.name}' already; choose another name.", param=param
            )

    @property
    def ready(self) -> bool:
        """True when every worker of every loaded model holds its model."""
        return all(pool.state in ("ready", "unloaded") for pool in list(self.pools.values()))

    @property
    def serving(self) -> bool:
        """True when every loaded model has at least one ready worker (the readiness probe)."""
        return all(pool.state in _SERVING for pool in list(self.pools.values()))

    @property
    def running(self) -> int:
        return sum(pool.running for pool in list(self.pools.values()))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            tuple(
                ModelStatus(name, model.state, model.ready_workers, tuple(model.workers))
                for name, model in list(self.pools.items())
            )
        )

    def subscribe(self) -> AsyncIterator[Snapshot | PoolEvent]:
        """Every model now, then each state change and worker event as it happens."""
        return self.events.subscribe()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no model has a request in flight or waiting; False if `timeout_s` ran out first."""
        models = list(self.pools.values())
        done = await asyncio.gather(*(model.wait_idle(timeout_s) for model in models))
        return all(done)

    async def start(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    async def all_failed(self) -> bool:
        """After start: True once every model has failed for good (none will serve until an admin fixes it);
        False once one serves or may (ready, degraded, or lazy), or the server stops first."""
        async for _ in self.subscribe():
            states = [model.state for model in list(self.pools.values())]
            if states and all(state == "failed" for state in states):
                return True
            if not states or any(state in ("ready", "degraded", "unloaded") for state in states):
                return False
        return False

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(pool.stop() for pool in list(self.pools.values())))
        self.events.close()

    # --- run-time changes -----------------------------------------------------------------

    def _check_manageable(self) -> None:
        if not self.manageable:
            raise NotSupported(
                "Loading and unloading models at run time is not supported with --ray: Ray Serve owns the "
                "deployments. Change the Serve application's config instead."
            )

    async def add(self, spec: ModelSpec) -> ManagedModel:
        """Serve a new model; its workers start now unless it is lazy (spawned, not yet loaded)."""
        self._check_manageable()
        if spec.name in self.pools:
            raise ModelExists(
                f"A model named '{spec.name}' exists already ({self.pools[spec.name].state}); "
                "unload it first or choose another name.",
                param="name",
            )
        self._check_name_free(spec.name, "name")
        for adapter in spec.adapters:
            self._check_name_free(adapter.name, "adapters")
            if adapter.name == spec.name:
                raise ModelExists(f"The adapter '{adapter.name}' cannot share its model's name.", param="adapters")
        model = self._managed(spec, "admin")
        self.pools[spec.name] = model  # before any await: a second add of the name gets 409
        try:
            await model.start()
        except BaseException:
            if self.pools.get(spec.name) is model:
                del self.pools[spec.name]
            await model.stop()
            raise
        return model

    async def load(self, model: str) -> ManagedModel:
        """Start the workers of a registered model that has none (lazy, idle or unloaded)."""
        self._check_manageable()
        managed = self.get(model)
        await managed.load()
        return managed

    def unload(self, model: str, drain_timeout_s: float) -> asyncio.Task[None]:
        """Drain the model, then stop its workers; it stays listed, `unloaded`."""
        self._check_manageable()
        return self._track(self.get(model).unload(drain_timeout_s))

    def remove(self, model: str, drain_timeout_s: float) -> asyncio.Task[None]:
        """Drain and unload the model, then forget its name (a new model may take it)."""
        self._check_manageable()
        managed = self.get(model)
        unloading = managed.unload(drain_timeout_s, remove=True)

        async def forget() -> None:
            try:
                await asyncio.shield(unloading)
            finally:
                if unloading.done() and self.pools.get(model) is managed:
                    del self.pools[model]

        return self._track(asyncio.get_running_loop().create_task(forget()))

    async def add_adapter(self, model: str, adapter: AdapterSpec) -> ManagedModel:
        """Serve a LoRA adapter of `model` under its own id: loaded by every worker before this returns."""
        self._check_manageable()
        managed = self.get(model)
        self._check_name_free(adapter.name, "name")
        await managed.add_adapter(adapter)
        return managed

    async def remove_adapter(self, model: str, adapter: str, drain_timeout_s: float) -> None:
        """Drain the requests on the adapter, then unload it from every worker; its id is free again."""
        self._check_manageable()
        await self.get(model).remove_adapter(adapter, drain_timeout_s)

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Keep a background task referenced until done, and cancel it when the server stops."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _gauges(self) -> Iterator[tuple[str, dict[str, str], float]]:
        for name, pool in list(self.pools.items()):
            labels = {"model": name}
            yield "warmserve_requests_running", labels, pool.running
            yield "warmserve_requests_waiting", labels, pool.waiting
            yield "warmserve_workers_ready", labels, pool.ready_workers
            yield "warmserve_model_healthy", labels, 0.0 if pool.state in ("unhealthy", "failed") else 1.0
            yield "warmserve_model_loaded", labels, 0.0 if pool.pool is None else 1.0
