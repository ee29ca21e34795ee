"""What the API needs from one served model, whoever runs its workers.

`ModelPool` runs them as local processes; `warmserve.ray_serve` as Ray Serve replicas on
other machines. The routes only see this interface, so the same app serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.generation import GenerationRequest, ModelFacts
from warmserve.metrics import Metrics
from warmserve.pool.stream import RequestStream
from warmserve.protocol import ModelState


class Pool(Protocol):
    spec: ModelSpec

    @property
    def state(self) -> ModelState: ...

    @property
    def ready_workers(self) -> int: ...

    @property
    def running(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def facts(self) -> ModelFacts | None:
        """What a loaded worker reported about the model; None until one has."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """Admit a request (or raise a typed error); its events come on the returned stream."""
        ...

    async def tokenize(self, request: GenerationRequest) -> list[int]: ...

    async def detokenize(self, tokens: list[int]) -> str: ...
    async def embed(self, request: EmbedRequest) -> Embedded:
        """One unit vector per input (or a typed error); computed beside generations, never queued behind them."""
        ...


# Builds the pool of one model; the pool counts its requests and tokens in the app's metrics.
PoolFactory = Callable[[ModelSpec, Metrics], Pool]
