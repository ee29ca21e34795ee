"""Embedding requests inside an engine: admitted at once, computed a bounded batch per step.

The worker runs one batch of embedding work between two generation steps, so a request
for thousands of texts neither waits behind long generations nor stalls them: each batch
holds at most `budget` tokens (counting padding where the engine pads), with texts of
several requests packed together. An engine that can carry a sequence across batches (a
causal model, mean pooling: the KV cache holds the earlier part) gets long inputs in
pieces of at most `budget` tokens; otherwise an input is always computed whole.

An engine returns one vector per piece: for split inputs the sum of the piece's token
vectors, otherwise the pooled vector. The pieces of an input are summed and the sum is
scaled to unit length, which is mean pooling (the count cancels out) and leaves any
other pooling unchanged; OpenAI's vectors are unit length too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from warmserve.embedding import Embedded
from warmserve.errors import BackendError, ErrorInfo, InvalidRequest, WarmServeError
from warmserve.generation import Failed, GenerationEvent

if TYPE_CHECKING:  # numpy is imported where vectors are made: in workers, never in the API process
    import numpy as np
    import numpy.typing as npt

Vector: TypeAlias = "npt.NDArray[np.float32]"


@dataclass(frozen=True)
class EmbedPiece:
    """Consecutive tokens of one input; `first`: a new sequence starts, `last`: the input ends."""

    tokens: list[int]
    start: int  # position of tokens[0] within its input
    first: bool
    last: bool


@dataclass
class _Job:
    request_id: str
    inputs: list[list[int]]
    sums: list[Vector | None]
    index: int = 0  # the input being worked on
    offset: int = 0  # tokens of it already computed
    vectors: list[bytes] = field(default_factory=list)


def normalized(vector: Vector) -> Vector:
    """Scaled to unit length (a zero vector stays zero)."""
    import numpy as np

    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def to_wire(vector: Vector) -> bytes:
    """Little-endian float32 bytes, as `warmserve.embedding` carries vectors."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def check_dimensions(requested: int | None, size: int) -> None:
    if requested is not None and requested != size:
        raise InvalidRequest(
            f"This model's embeddings have {size} dimensions and it was not trained to be shortened; "
            f"'dimensions' must be {size} or left out (you sent {requested}).",
            param="dimensions",
        )


class EmbeddingJobs:
    """The embedding requests one engine holds, worked off in admission order."""

    def __init__(self, budget: int, max_pieces: int, split: bool, padded: bool) -> None:
        self.budget = budget  # tokens per batch (see the module docstring)
        self.max_pieces = max_pieces  # sequences per batch
        self.split = split  # long inputs may span batches
        self.padded = padded  # a batch costs rows x longest row, not the sum of lengths
        self._jobs: deque[_Job] = deque()

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, request_id: str, inputs: list[list[int]]) -> None:
        self._jobs.append(_Job(request_id, inputs, [None] * len(inputs)))

    def cancel(self, request_id: str) -> None:
        for job in self._jobs:
            if job.request_id == request_id:
                self._jobs.remove(job)
                return

    def step(self, compute: Callable[[list[EmbedPiece]], list[Vector]]) -> list[tuple[str, GenerationEvent]]:
        """Compute one batch; the events of the jobs it finished (or failed)."""
        batch = self._next_batch()
        if not batch:
            return []
        try:
            vectors = compute([piece for _, piece in batch])
        except Exception as exc:
            error = exc if isinstance(exc, WarmServeError) else BackendError(f"The embedding failed: {exc}")
            return self._fail(list({id(job): job for job, _ in batch}.values()), error.info())
        events: list[tuple[str, GenerationEvent]] = []
        for (job, piece), vector in zip(batch, vectors, strict=True):
            total = job.sums[job.index]
            job.sums[job.index] = vector.astype("float32") if total is None else total + vector
            job.offset += len(piece.tokens)
            if piece.last:
                done = job.sums[job.index]
                assert done is not None
                job.vectors.append(to_wire(normalized(done)))
                job.sums[job.index] = None
                job.index, job.offset = job.index + 1, 0
            if job.index == len(job.inputs):
                self._jobs.remove(job)
                tokens = sum(len(tokens) for tokens in job.inputs)
                events.append((job.request_id, Embedded(tuple(job.vectors), prompt_tokens=tokens)))
        return events

    def _next_batch(self) -> list[tuple[_Job, EmbedPiece]]:
        batch: list[tuple[_Job, EmbedPiece]] = []
        used, longest = 0, 0
        for job in self._jobs:
            for index in range(job.index, len(job.inputs)):
                tokens = job.inputs[index]
                start = job.offset if index == job.index else 0
                remaining = len(tokens) - start
                if not batch and self.split and remaining > self.budget:
                    chunk = tokens[start : start + self.budget]  # the head input, in pieces
                    return [(job, EmbedPiece(chunk, start, first=start == 0, last=False))]
                longest = max(longest, remaining)
                cost = longest * (len(batch) + 1) if self.padded else used + remaining
                if batch and (cost > self.budget or len(batch) == self.max_pieces):
                    return batch
                batch.append((job, EmbedPiece(tokens[start:], start, first=start == 0, last=True)))
                used += remaining
        return batch

    def _fail(self, jobs: list[_Job], error: ErrorInfo) -> list[tuple[str, GenerationEvent]]:
        for job in jobs:
            self._jobs.remove(job)
        return [(job.request_id, Failed(error)) for job in jobs]
