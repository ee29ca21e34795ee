"""The llama.cpp engine's slots: what each sequence of the context holds, which free one a request takes,
and how one is freed (backends/llama/engine.py schedules them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from warmserve.backends.llama import native
from warmserve.backends.llama.speculation import SequenceSpeculation
from warmserve.backends.llama.tiling import Cells, in_tiles, reusable
from warmserve.backends.reasoning import OutputGrammar, Thinking
from warmserve.backends.text import OutputTracker

# A shared prefix shorter than this is not worth a slot that breaks up an adapter's run of sequence ids.
REUSE_MIN = 32


@dataclass
class Slot:
    """One sequence of the context: the cells it holds and the request running in it."""

    sequence: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV cells this sequence holds
    request_id: str | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    next_token: int | None = None  # sampled, to be evaluated by the next step
    sampler: native.Sampler | None = None
    tracker: OutputTracker | None = None
    logprobs: int | None = None  # alternatives to report per token; None: no logprobs
    constraint: OutputGrammar | None = None
    thinking: Thinking | None = None  # a reasoning model's request: where its thinking block is
    adapter: str | None = None  # the running request's LoRA adapter
    cached_adapter: str | None = None  # the adapter that computed the cached KV cells
    tiled: int = 0  # the cells (or, while prefilling, the prompt rows) the tiled kernel computes end here
    speculation: SequenceSpeculation | None = None  # the request drafts (prompt lookup)

    @property
    def busy(self) -> bool:
        return self.request_id is not None

    @property
    def cells(self) -> Cells:
        return Cells(self.cached, self.cached_adapter, min(self.tiled, len(self.cached)))

    @property
    def tiles_pending(self) -> bool:
        """The next prompt rows are a tile's (computed in a decode call of their own)."""
        return bool(self.pending) and in_tiles(len(self.cached), self.tiled)


def choose_slot(slots: list[Slot], wanted: Cells) -> tuple[Slot, int]:
    """The free slot with the most cells the request may reuse, when it is worth it; else the one that keeps
    this adapter's sequence ids in the fewest runs, then the farthest from other adapters' (room for theirs to
    grow), then the lowest id. Returns it and how many of its cells the request keeps."""
    free = [slot for slot in slots if not slot.busy]
    if not free:
        raise RuntimeError("no free slot: the worker admitted more than the engine's capacity")
    adapter = wanted.adapter
    own = {slot.sequence for slot in slots if slot.busy and slot.adapter == adapter}
    others = [slot.sequence for slot in slots if slot.busy and slot.adapter != adapter]

    def shared(slot: Slot) -> int:
        return reusable(slot.cells, wanted, len(wanted.tokens) - 1)

    def preference(slot: Slot) -> tuple[int, int, int, int]:
        reuse = shared(slot)
        room = min((abs(slot.sequence - other) for other in others), default=0)
        return (reuse if reuse >= REUSE_MIN else 0, -_runs(own | {slot.sequence}), room, -slot.sequence)

    best = max(free, key=preference)
    return best, shared(best)


def release(slot: Slot) -> None:
    """Free the slot for the next request; its KV cells stay for prefix reuse."""
    if slot.sampler is not None:
        slot.sampler.free()
    slot.pending = []  # cancelled mid-prompt: the cached part is still exact
    slot.request_id = None
    slot.sampler = None
    slot.tracker = None
    slot.constraint = None
    slot.thinking = None
    slot.next_token = None
    slot.adapter = None
    slot.speculation = None


def _runs(sequences: set[int]) -> int:
    """How many runs of consecutive ids the set holds: llama.cpp computes each run in a pass of its own."""
    return sum(1 for sequence in sequences if sequence - 1 not in sequences)
