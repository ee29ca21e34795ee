"""Which prompt rows run through CPU flash attention's tiled kernel, and how much of a sequence's cells a request
may keep so that its answer still equals a cold run's.

llama.cpp's CPU flash attention computes the rows of a sequence with a tiled kernel when a micro-batch holds
64 or more of them, else with a per-row kernel; the two round differently. Each kernel gives a row the same
values whatever else is in the batch (measured bitwise: chunks of any size and start, two sequences in one
call, a state restored mid-prompt), and one-token decodes and
speculation's verify rows use the per-row kernel. The tiled kernel is 4-5x faster per row at 1-2k tokens of
context (README, "How a GGUF model runs").

So a prompt of n tokens is planned the same way wherever it runs: when it reaches `TILED_FROM + TILE_ROWS`
tokens, its rows from `TILED_FROM` to its end (its *tiled end*) are computed in the tiled kernel, in chunks
of at least 64 rows, each in a decode call of its own (llama.cpp splits a batch into micro-batches of equal
rows per sequence, so a decode row beside a chunk would break it up). Every other row is computed per row,
beside the other sequences' decode rows, as output tokens are: the rows below `TILED_FROM`, where the
per-row kernel costs little more (1.2-2x), and a shorter prompt's. The cells a request may keep are the
ones its own plan computes with the same kernel, and no more than leave it 64 tiled rows to compute
(`reusable`): a conversation's next turn keeps the previous prompt and computes the previous answer again,
in the tiled kernel; the same prompt again computes its last 64 rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warmserve.backends.tokens import shared_prefix

TILE_ROWS = 64  # GGML_FA_TILE_Q in the llama.cpp that llama-cpp-python 0.3.36 vendors
TILED_FROM = 2 * TILE_ROWS


@dataclass(frozen=True)
class Cells:
    """What a sequence's KV cells hold: the tokens computed, the adapter that computed them, and their
    tiled end (cells from TILED_FROM to it came from the tiled kernel, the rest from the per-row kernel)."""

    tokens: Sequence[int]
    adapter: str | None
    tiled: int = 0


def tiled_end(prompt_tokens: int, tiling: bool) -> int:
    """Where the tiled rows of a prompt of `prompt_tokens` end (TILED_FROM: none; 0 when the engine does not tile)."""
    if not tiling:
        return 0
    return prompt_tokens if prompt_tokens >= TILED_FROM + TILE_ROWS else TILED_FROM


def in_tiles(position: int, tiled: int) -> bool:
    """Whether the prompt row at `position` is computed in the tiled kernel."""
    return TILED_FROM <= position < tiled


def rows_until_tiles(position: int, tiled: int) -> int | None:
    """How many per-row prompt rows from `position` may go before the tiles begin (None: no tiles ahead)."""
    return TILED_FROM - position if position < TILED_FROM < tiled else None


def tile_chunk(left: int) -> int:
    """Of `left` tiled rows still to compute (64 or more), how many go in the next call: 64 at a time, the last
    call taking up to 127 so that none has fewer than 64."""
    return left if left < 2 * TILE_ROWS else TILE_ROWS


def reusable(held: Cells, wanted: Cells, limit: int) -> int:
    """How many leading cells of `held` a request for `wanted` (its tokens, adapter and tiled end) may keep,
    at most `limit`, so that what it computes after them is what a cold run computes."""
    if held.adapter != wanted.adapter:
        return 0
    return keepable(min(shared_prefix(held.tokens, wanted.tokens), limit), held.tiled, wanted.tiled)


def keepable(shared: int, held_tiled: int, wanted_tiled: int) -> int:
    """Of `shared` leading cells tiled from TILED_FROM up to `held_tiled`, how many a request whose plan tiles up
    to `wanted_tiled` may keep: all when the two tiled ends agree, else those before the nearer end (past it one
    of them was computed per row and the other is planned in tiles); and none of its last 64 tiled rows, which
    a decode call computes in the tiled kernel only with 64 rows or more."""
    keep = shared if held_tiled == wanted_tiled else min(shared, held_tiled, wanted_tiled)
    last_call = wanted_tiled - TILE_ROWS
    return last_call if TILED_FROM <= last_call < keep < wanted_tiled else keep
