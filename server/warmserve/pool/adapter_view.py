"""A LoRA adapter as the routes see it: its base model's pool, with every request run on the adapter.

The routes resolve `model` to a `Pool` and never learn whether it is a model or an adapter of one:
this view stamps the adapter on each generation request and hands it to the base model, which
admits, queues, drains and counts it with the base model's other requests. An adapter generates
only: its spec says so, so the embeddings route answers it with a 400 naming `model`.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import InvalidRequest, ModelUnavailable, NotSupported
from warmserve.generation import GenerationRequest, ModelFacts
from warmserve.hub import DownloadStatus
from warmserve.pool.events import WorkerStatus
from warmserve.pool.managed import ManagedModel
from warmserve.pool.stream import RequestStream
from warmserve.pool.watch import Watched
from warmserve.protocol import ModelState


class AdapterModel:
    """One adapter of `base` (see the module docstring); itself a `Pool`."""

    def __init__(self, base: ManagedModel, adapter: AdapterSpec) -> None:
        self.base = base
        self.adapter = adapter
        self.spec: ModelSpec = base.spec.model_copy(update={"name": adapter.name, "tasks": ["generate"]})

    @property
    def state(self) -> ModelState:
        return self.base.state

    @property
    def reason(self) -> str | None:
        return self.base.reason

    @property
    def ready_workers(self) -> int:
        return self.base.ready_workers

    @property
    def download(self) -> DownloadStatus | None:
        return self.base.download

    @property
    def workers(self) -> list[WorkerStatus]:
        return self.base.workers

    @property
    def running(self) -> int:
        return self.base.running

    @property
    def waiting(self) -> int:
        return self.base.waiting

    @property
    def in_flight(self) -> Watched[int]:
        return self.base.adapter_in_flight(self.adapter.name)

    @property
    def facts(self) -> ModelFacts | None:
        return self.base.facts

    async def wait_for(self, states: Container[ModelState], timeout_s: float | None = None) -> ModelState:
        return await self.base.wait_for(states, timeout_s)

    async def start(self) -> None:
        raise NotSupported("An adapter loads with its model.")

    async def stop(self) -> None:
        raise NotSupported("An adapter unloads with its model, or is removed from it.")

    def fail_all(self, error: ModelUnavailable) -> None:
        self.base.fail_adapter(self.adapter.name, error)

    def adapter_in_flight(self, adapter: str) -> Watched[int]:
        return self.base.adapter_in_flight(adapter)

    def fail_adapter(self, adapter: str, error: ModelUnavailable) -> None:
        self.base.fail_adapter(adapter, error)

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        raise NotSupported(f"'{self.adapter.name}' is an adapter: add adapters to its model '{self.base.spec.name}'.")

    async def remove_adapter(self, name: str) -> None:
        raise NotSupported(f"'{self.adapter.name}' is an adapter: remove adapters from '{self.base.spec.name}'.")

    async def submit(self, request: GenerationRequest) -> RequestStream:
        return await self.base.submit(replace(request, adapter=self.adapter.name))

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        """The base model's tokenizer and chat template: an adapter changes weights, not tokens."""
        return await self.base.tokenize(request)

    async def detokenize(self, tokens: list[int]) -> str:
        return await self.base.detokenize(tokens)

    async def embed(self, request: EmbedRequest) -> Embedded:
        raise InvalidRequest(
            f"The adapter '{self.adapter.name}' generates only; ask its model '{self.base.spec.name}' for embeddings.",
            param="model",
        )
