"""One Ray Serve replica of a model: a local ModelPool of one worker process.

The replica reuses the single-machine pool whole (worker process, engine loop, cancellation,
restart after a crash); Ray Serve adds placement, replica count and backpressure around it.
Everything that leaves the replica is a GenerationEvent, errors included (as `Failed`), so
the ingress never has to unwrap a Ray exception to learn what went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import ModelUnavailable, WarmServeError
from warmserve.generation import Detokenized, Failed, GenerationEvent, GenerationRequest, ModelFacts, Tokenized
from warmserve.metrics import Metrics
from warmserve.pool import ModelPool

log = logging.getLogger(__name__)


class ModelReplica:
    """A warm model: constructed once its worker holds the model, so Serve routes only to loaded replicas."""

    async def __init__(self, spec: dict[str, Any], log_level: str) -> None:  # type: ignore[misc]  # Serve awaits it
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
        self._spec = ModelSpec.model_validate(spec)
        self._pool = ModelPool(self._spec, log_level, Metrics())
        await self._pool.start()
        await self._pool.wait_for(("ready", "unhealthy", "failed"))
        self.check_health()
        log.info("replica of %s ready", self._spec.name)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """The request's events, with the tokens drawn (the ingress resumes the request elsewhere from them
        if this replica dies); cancelling the call (client gone) cancels it in the worker."""
        try:
            stream = await self._pool.submit(request, relay_drawn=True)
        except WarmServeError as exc:
            yield Failed(exc.info())
            return
        try:
            async for event in stream:
                yield event
        except WarmServeError as exc:
            yield Failed(exc.info())
        finally:
            stream.close()

    async def tokenize(self, request: GenerationRequest) -> Tokenized | Failed:
        try:
            return Tokenized(tuple(await self._pool.tokenize(request)))
        except WarmServeError as exc:
            return Failed(exc.info())

    async def detokenize(self, tokens: list[int]) -> Detokenized | Failed:
        try:
            return Detokenized(await self._pool.detokenize(tokens))
        except WarmServeError as exc:
            return Failed(exc.info())

    def facts(self) -> ModelFacts | None:
        return self._pool.facts

    async def embed(self, request: EmbedRequest) -> Embedded | Failed:
        try:
            return await self._pool.embed(request)
        except WarmServeError as exc:
            return Failed(exc.info())

    def check_health(self) -> None:
        """Ray Serve's health check: a replica whose worker keeps failing to load is replaced."""
        if self._pool.state in ("unhealthy", "failed"):
            raise ModelUnavailable(f"Model '{self._spec.name}' cannot be loaded on this replica.")

    async def __del__(self) -> None:
        await self._pool.stop()
