"""All served models: one ModelPool per name, started and stopped together."""

from __future__ import annotations

import asyncio
import time

from warmserve.config import ServerSettings
from warmserve.errors import ModelNotFound
from warmserve.pool.supervisor import ModelPool


class PoolManager:
    def __init__(self, settings: ServerSettings) -> None:
        self.created = int(time.time())
        self.pools: dict[str, ModelPool] = {
            spec.name: ModelPool(spec, settings.log_level, settings.worker_start_timeout_s)
            for spec in settings.models
        }

    def get(self, model: str) -> ModelPool:
        pool = self.pools.get(model)
        if pool is None:
            available = ", ".join(sorted(self.pools))
            raise ModelNotFound(
                f"The model '{model}' does not exist. Models served here: {available}.", param="model"
            )
        return pool

    @property
    def ready(self) -> bool:
        """True when every worker of every model holds its model."""
        return all(pool.fully_ready for pool in self.pools.values())

    async def start(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(pool.stop() for pool in self.pools.values()))
