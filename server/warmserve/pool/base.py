"""What the API needs from one served model, whoever runs its workers.

`ModelPool` runs them as local processes; `warmserve.ray_serve` as Ray Serve replicas on
other machines; `ManagedModel` wraps either with load and unload. The routes only see this
interface, so the same app serves all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Protocol

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import ModelUnavailable
from warmserve.generation import GenerationRequest, ModelFacts
from warmserve.hub import DownloadStatus
from warmserve.metrics import Metrics
from warmserve.pool.events import Publish, WorkerStatus
from warmserve.pool.stream import RequestStream
from warmserve.pool.watch import Watched
from warmserve.protocol import ModelState


class Pool(Protocol):
    spec: ModelSpec

    @property
    def state(self) -> ModelState: ...

    @property
    def reason(self) -> str | None:
        """Why the state is what it is, when that is bad news (unhealthy: the load error)."""
        ...

    @property
    def ready_workers(self) -> int: ...

    @property
    def workers(self) -> list[WorkerStatus]:
        """The worker processes, where the pool runs them itself (empty for Ray replicas)."""
        ...

    @property
    def running(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def in_flight(self) -> Watched[int]:
        """Requests admitted and not yet done: a drain waits for it to reach 0."""
        ...

    @property
    def facts(self) -> ModelFacts | None:
        """What a loaded worker reported about the model; None until one has."""
        ...

    @property
    def download(self) -> DownloadStatus | None:
        """How far the download of a hub model has come while the pool fetches it; None otherwise."""
        ...

    async def wait_for(self, states: Container[ModelState], timeout_s: float | None = None) -> ModelState:
        """The state once it is one of `states` (or the state at the timeout); woken by the change, not a poll."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def fail_all(self, error: ModelUnavailable) -> None:
        """End every request in flight with `error` (a drain that ran out of time)."""
        ...

    def adapter_in_flight(self, adapter: str) -> Watched[int]:
        """Requests on one LoRA adapter admitted and not yet done: removing it waits for 0."""
        ...

    def fail_adapter(self, adapter: str, error: ModelUnavailable) -> None:
        """End every request on `adapter` with `error` (its removal's drain ran out of time)."""
        ...

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Load a LoRA adapter on every worker (or raise the typed error of one that could not, having
        unloaded it from the others); workers started later load it with the model."""
        ...

    async def remove_adapter(self, name: str) -> None:
        """Unload an adapter from every worker; its requests were drained first."""
        ...

    async def submit(self, request: GenerationRequest) -> RequestStream:
        """Admit a request (or raise a typed error); its events come on the returned stream."""
        ...

    async def tokenize(self, request: GenerationRequest) -> list[int]: ...

    async def detokenize(self, tokens: list[int]) -> str: ...

    async def embed(self, request: EmbedRequest) -> Embedded:
        """One unit vector per input (or a typed error); computed beside generations, never queued behind them."""
        ...


# Builds the pool of one model: it counts its requests in the app's metrics and publishes its events.
PoolFactory = Callable[[ModelSpec, Metrics, Publish], Pool]
