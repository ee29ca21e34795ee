"""The interfaces engines implement: generation and embeddings, each shaped like a step loop.

A worker process owns one engine. As a `Generator` it `add`s requests while the engine
has free capacity, calls `step` to advance every running request by one token, and
`cancel`s requests whose client went away. A batching engine runs up to `capacity`
requests per step; a serial engine is the same interface with capacity 1.

As an `Embedder` it queues embedding requests at once (`add_embedding`) and computes one
bounded batch of queued inputs per `embed_step` (backends/embedding.py); an engine
supplies only the model side: `embed_tokens`, `embed_pieces` and `embed_size`.

Every engine is both (`Engine`), so one worker serves both kinds of request; the worker
still drives each through its own interface.

A generator also serves LoRA adapters (`add_adapter`, `remove_adapter`): a request names one in
`GenerationRequest.adapter`, and requests of different adapters may run at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from warmserve.adapters import AdapterSpec
from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, Vector, check_dimensions
from warmserve.backends.tokens import Vocabulary
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import error_from_info
from warmserve.generation import Failed, GenerationEvent, GenerationRequest, ModelFacts, PromptCacheStats, Started

StepEvents = list[tuple[str, GenerationEvent]]


class Generator(ABC):
    """Text generation, one token per running request per `step`."""

    capacity: int = 1

    @abstractmethod
    def add(self, request_id: str, request: GenerationRequest) -> Started:
        """Tokenize and admit a request; raises a WarmServeError if it cannot run."""

    @abstractmethod
    def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens exactly as `add` would feed them to the model."""

    @abstractmethod
    def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids (special tokens written out); unknown ids are an InvalidRequest."""

    @abstractmethod
    def step(self) -> StepEvents:
        """Advance every running request by one token; return their events in order."""

    @abstractmethod
    def cancel(self, request_id: str) -> None:
        """Stop a running request at once and free what it held; unknown ids are ignored."""

    @property
    @abstractmethod
    def running(self) -> int:
        """Requests currently admitted."""

    @property
    @abstractmethod
    def facts(self) -> ModelFacts:
        """What the loaded model is: reported to the API process once, when the worker is ready."""

    @abstractmethod
    def add_adapter(self, adapter: AdapterSpec) -> None:
        """Load a LoRA adapter so requests can name it; raises InvalidRequest naming it when its files do not
        fit the model (missing, another base model, inconsistent ranks)."""

    @abstractmethod
    def remove_adapter(self, name: str) -> None:
        """Unload an adapter; the pool has drained its requests first. Unknown names are ignored."""

    def set_threads(self, threads: int) -> None:  # noqa: B027 - engines without a thread setting ignore it
        """Compute prompt chunks on this many CPU threads from the next step on (cores lent by idle workers)."""

    def prompt_cache_stats(self) -> PromptCacheStats | None:
        """The engine's host-memory prompt cache, for metrics; None when it has none (or it is off)."""
        return None


class Embedder(ABC):
    """Embeddings, admitted at once and computed a bounded batch per `embed_step`."""

    @property
    @abstractmethod
    def embed_size(self) -> int:
        """Dimensions of the model's embeddings."""

    @abstractmethod
    def embed_tokens(self, request: EmbedRequest) -> list[list[int]]:
        """Every input as the tokens the model reads (token ids as given); raises on an input it cannot read."""

    @abstractmethod
    def embed_pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        """One vector per piece (see backends/embedding.py): computed together, in one batch."""

    def embedding_jobs(self) -> EmbeddingJobs:
        """How this engine batches embedding work; engines that can do better override it."""
        return EmbeddingJobs(budget=512, max_pieces=64, split=False, padded=False)

    @property
    def embedding(self) -> int:
        """Embedding requests admitted and not yet answered."""
        return len(self._jobs())

    def add_embedding(self, request_id: str, request: EmbedRequest) -> None:
        """Check a request and queue it; raises a WarmServeError (naming the parameter) if it cannot run."""
        check_dimensions(request.dimensions, self.embed_size)
        self._jobs().add(request_id, self.embed_tokens(request))

    def embed_step(self) -> StepEvents:
        """Compute one bounded batch of queued embedding work; answers the requests it completed."""
        return self._jobs().step(self.embed_pieces)

    def cancel_embedding(self, request_id: str) -> None:
        self._jobs().cancel(request_id)

    def embed(self, request: EmbedRequest) -> Embedded:
        """The whole answer to one request, at once (scripts and tests; workers use the steps)."""
        self.add_embedding("embed", request)
        while True:
            for request_id, event in self.embed_step():
                if request_id != "embed":
                    continue
                if isinstance(event, Failed):
                    raise error_from_info(event.error)
                if isinstance(event, Embedded):
                    return event

    def _jobs(self) -> EmbeddingJobs:
        jobs: EmbeddingJobs | None = self.__dict__.get("_embedding_jobs")
        if jobs is None:
            jobs = self.__dict__["_embedding_jobs"] = self.embedding_jobs()
        return jobs


class Engine(Generator, Embedder):
    """A loaded model, built as `EngineClass(spec, worker_index)` inside a worker process."""

    def close(self) -> None:
        """Release the model before the worker exits."""


class EmbeddingModel(Protocol):
    """The model side of an engine's embeddings (llama/embed.py, hf/embed.py)."""

    size: int  # dimensions of a vector
    limit: int  # the longest input, in tokens

    def jobs(self) -> EmbeddingJobs: ...

    def pieces(self, pieces: list[EmbedPiece]) -> list[Vector]: ...


class VocabularyEngine(Engine):
    """An engine whose `Vocabulary` tokenizes, with every prompt and token check written once there."""

    _vocab: Vocabulary

    def tokenize(self, request: GenerationRequest) -> list[int]:
        return self._vocab.tokenize(request)

    def detokenize(self, tokens: list[int]) -> str:
        return self._vocab.detokenize(tokens)


class ModelEngine(VocabularyEngine):
    """An engine over a real model: its `EmbeddingModel` embeds too, so what is left to the engine
    itself is generation."""

    _embedder: EmbeddingModel

    @property
    def embed_size(self) -> int:
        return self._embedder.size

    def embedding_jobs(self) -> EmbeddingJobs:
        return self._embedder.jobs()

    def embed_tokens(self, request: EmbedRequest) -> list[list[int]]:
        return self._vocab.embed_inputs(request, self._embedder.limit)

    def embed_pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        return self._embedder.pieces(pieces)
