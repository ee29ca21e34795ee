"""All served models: one pool per name, started and stopped together.

By default each pool is a `ModelPool` of local worker processes; `make_pool` builds another
kind (Ray Serve replicas) behind the same interface.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from warmserve.config import ModelSpec, ServerSettings
from warmserve.errors import ModelNotFound
from warmserve.metrics import Metrics
from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.supervisor import ModelPool


class PoolManager:
    def __init__(self, settings: ServerSettings, metrics: Metrics, make_pool: PoolFactory | None = None) -> None:
        self.created = int(time.time())
        if make_pool is None:

            def make_pool(spec: ModelSpec, metrics: Metrics) -> Pool:
                return ModelPool(spec, settings.log_level, metrics)

        self.pools: dict[str, Pool] = {spec.name: make_pool(spec, metrics) for spec in settings.models}
        metrics.watch_pools(self._gauges)

    def get(self, model: str) -> Pool:
        pool = self.pools.get(model)
        if pool is None:
            available = ", ".join(sorted(self.pools))
            raise ModelNotFound(f"The model '{model}' does not exist. Models served here: {available}.", param="model")
        return pool

    @property
    def ready(self) -> bool:
        """True when every worker of every model holds its model."""
        return all(pool.state == "ready" for pool in self.pools.values())

    @property
    def serving(self) -> bool:
        """True when every model has at least one ready worker (the readiness probe)."""
        return all(pool.state in ("ready", "degraded") for pool in self.pools.values())

    @property
    def running(self) -> int:
        return sum(pool.running for pool in self.pools.values())

    async def start(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(pool.stop() for pool in self.pools.values()))

    def _gauges(self) -> Iterator[tuple[str, dict[str, str], float]]:
        for name, pool in self.pools.items():
            labels = {"model": name}
            yield "warmserve_requests_running", labels, pool.running
            yield "warmserve_requests_waiting", labels, pool.waiting
            yield "warmserve_workers_ready", labels, pool.ready_workers
            yield "warmserve_model_healthy", labels, 0.0 if pool.state == "unhealthy" else 1.0
