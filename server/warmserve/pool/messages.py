"""Messages on the pipe between the supervisor (API process) and a worker process.

Requests are multiplexed by id: a worker holds several in flight, and every event
it sends back names the request it belongs to. All messages are frozen dataclasses
of plain data, pickled by multiprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmserve.adapters import AdapterSpec
from warmserve.embedding import EmbedRequest
from warmserve.errors import ErrorInfo
from warmserve.generation import GenerationEvent, GenerationRequest, ModelFacts, PromptCacheStats

# supervisor -> worker


@dataclass(frozen=True)
class Submit:
    request_id: str
    request: GenerationRequest


@dataclass(frozen=True)
class Tokenize:
    """Answered at once with a Tokenized (or Failed) event; never queued behind generations."""

    request_id: str
    request: GenerationRequest


@dataclass(frozen=True)
class Detokenize:
    """Answered at once with a Detokenized (or Failed) event."""

    request_id: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Embed:
    """Queued in the worker's engine and computed a bounded batch between generation steps,
    never behind waiting generations; answered with one Embedded (or Failed) event."""

    request_id: str
    request: EmbedRequest


@dataclass(frozen=True)
class Cancel:
    request_id: str


@dataclass(frozen=True)
class SetThreads:
    """CPU threads for the engine's next prompt chunks: the cores of idle workers are lent to busy ones."""

    threads: int


@dataclass(frozen=True)
class LoadAdapter:
    """Load a LoRA adapter between steps; answered with an AdapterChanged."""

    adapter: AdapterSpec


@dataclass(frozen=True)
class UnloadAdapter:
    """Unload a LoRA adapter (no request uses it any more); answered with an AdapterChanged."""

    name: str


@dataclass(frozen=True)
class Shutdown:
    pass


ToWorker = Submit | Tokenize | Detokenize | Embed | Cancel | SetThreads | LoadAdapter | UnloadAdapter | Shutdown

# worker -> supervisor


@dataclass(frozen=True)
class WorkerReady:
    load_seconds: float
    capacity: int
    facts: ModelFacts


@dataclass(frozen=True)
class WorkerLoadFailed:
    error: ErrorInfo


@dataclass(frozen=True)
class RequestEvents:
    """Every event of one engine step, in order, in one message to keep pickling cheap."""

    events: tuple[tuple[str, GenerationEvent], ...]


@dataclass(frozen=True)
class AdapterChanged:
    """The answer to a LoadAdapter or UnloadAdapter, in the order they were sent; `error` when it failed."""

    name: str
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class PromptCacheReport:
    """The engine's prompt cache after it changed (sent between steps, at most once a step)."""

    stats: PromptCacheStats


FromWorker = WorkerReady | WorkerLoadFailed | RequestEvents | AdapterChanged | PromptCacheReport
