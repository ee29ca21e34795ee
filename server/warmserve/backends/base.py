"""The one interface every engine implements, shaped like an engine step loop.

A worker process owns one engine. It `add`s requests while the engine has free
capacity, calls `step` to advance every running request by one token, and
`cancel`s requests whose client went away. A batching engine runs up to `capacity`
requests per step; a serial engine is the same interface with capacity 1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from warmserve.errors import ContextLengthExceeded, InvalidRequest
from warmserve.generation import GenerationEvent, GenerationRequest, ModelFacts, Started

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

    def close(self) -> None:  # noqa: B027 - most engines free their memory with the process
        """Release the model before the worker exits."""


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


def check_logit_bias(request: GenerationRequest, vocab_size: int) -> None:
    """Token ids in `logit_bias` must exist in this model's vocabulary."""
    unknown = [token for token, _ in request.sampling.logit_bias if not 0 <= token < vocab_size]
    if unknown:
        raise InvalidRequest(
            f"logit_bias names token {unknown[0]}, which this model does not have (its vocabulary has "
            f"{vocab_size} tokens, 0 to {vocab_size - 1}).",
            param="logit_bias",
        )
