"""The one interface every engine implements, shaped like an engine step loop.

A worker process owns one engine. It `add`s requests while the engine has free
capacity, calls `step` to advance every running request by one token, and
`cancel`s requests whose client went away. A batching engine runs up to `capacity`
requests per step; a serial engine is the same interface with capacity 1.

Embeddings ride the same loop: `add_embedding` checks and queues a request at once,
`embed_step` computes one bounded batch of queued inputs (backends/embedding.py). An
engine supplies the model side: `embed_tokens`, `embed_pieces` and `embed_size`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, Vector, check_dimensions
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import ContextLengthExceeded, InvalidRequest, error_from_info
from warmserve.generation import Failed, GenerationEvent, GenerationRequest, ModelFacts, Started

StepEvents = list[tuple[str, GenerationEvent]]


class Engine(ABC):
    """Built as `EngineClass(spec, worker_index)` inside a worker process."""

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

    def set_threads(self, threads: int) -> None:  # noqa: B027 - engines without a thread setting ignore it
        """Compute prompt chunks on this many CPU threads from the next step on (cores lent by idle workers)."""

    def close(self) -> None:  # noqa: B027 - most engines free their memory with the process
        """Release the model before the worker exits."""

    # --- embeddings -----------------------------------------------------------------------

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


def output_budget(prompt_tokens: int, max_tokens: int | None, n_ctx: int, param: str) -> int:
    """How many tokens a request may generate, or ContextLengthExceeded with the numbers."""
    if max_tokens is None:
        if prompt_tokens < n_ctx:
            return n_ctx - prompt_tokens
        max_tokens = 1
    if prompt_tokens + max_tokens > n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the {param}, {max_tokens} in "
            f"the completion). Please reduce the length of the {param} or completion.",
            param=param,
        )
    return max_tokens


def check_token_ids(tokens: list[int], vocab_size: int, param: str = "tokens") -> None:
    unknown = next((token for token in tokens if not 0 <= token < vocab_size), None)
    if unknown is not None:
        raise InvalidRequest(
            f"Token {unknown} does not exist in this model's vocabulary ({vocab_size} tokens, 0 to {vocab_size - 1}).",
            param=param,
        )


def given_tokens(request: GenerationRequest, vocab_size: int) -> list[int]:
    """A prompt sent as token ids: used as they are, once checked against the vocabulary."""
    assert request.prompt_tokens is not None
    tokens = list(request.prompt_tokens)
    if not tokens:
        raise InvalidRequest("The prompt is empty.", param="prompt")
    if request.suffix is not None:
        raise InvalidRequest("'suffix' needs the prompt as text, not token ids.", param="suffix")
    check_token_ids(tokens, vocab_size, param="prompt")
    return tokens


def fill_in_middle(
    request: GenerationRequest, fim: tuple[int, int, int] | None, encode: Callable[[str], list[int]]
) -> list[int]:
    """Prefix-suffix-middle order: the model writes what goes between `prompt` and `suffix`.

    `fim` is the model's prefix, suffix and middle tokens (None: it has none, a 400 naming
    `suffix`); `encode` tokenizes text without special tokens.
    """
    if fim is None:
        raise InvalidRequest(
            "This model has no fill-in-the-middle tokens, so 'suffix' is not supported for it.", param="suffix"
        )
    assert request.prompt is not None
    assert request.suffix is not None
    prefix, suffix, middle = fim
    return [prefix, *encode(request.prompt), suffix, *encode(request.suffix), middle]


def check_logit_bias(request: GenerationRequest, vocab_size: int) -> None:
    """Token ids in `logit_bias` must exist in this model's vocabulary."""
    unknown = [token for token, _ in request.sampling.logit_bias if not 0 <= token < vocab_size]
    if unknown:
        raise InvalidRequest(
            f"logit_bias names token {unknown[0]}, which this model does not have (its vocabulary has "
            f"{vocab_size} tokens, 0 to {vocab_size - 1}).",
            param="logit_bias",
        )
