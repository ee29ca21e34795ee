"""Which prompt rows run through CPU flash attention's tiled kernel, and how much of a sequence's cells a request
may keep so that its answer still equals a cold run's.

llama.cpp's CPU flash attention computes the rows of a sequence with a tiled kernel when a micro-batch holds
64 or more of them, else with a per-row kernel; the two round differently. Each kernel gives a row the same
values whatever else is in the batch (measured bitwise: chunk sizes 64 to 512, two sequences in one call, a
state restored mid-prompt), and one-token decodes and speculation's verify rows use the per-row kernel. The
tiled kernel is about 3x faster at 2,000 tokens of context (README, "How a GGUF model runs").

So a prompt of n tokens is planned the same way wherever it runs: rows from `TILED_FROM` up to the last
multiple of 64 at or below n (its *tiled end*) in whole tiles, each in a decode call of its own (llama.cpp
splits a batch into micro-batches of equal rows per sequence, so a decode row beside a tile would break it
up), and the rest beside the other sequences' decode rows, per row, as output tokens are. Below
`TILED_FROM` the per-row kernel costs little more (1.2-1.6x a tile's time, against 4-5x at 1-2k tokens of
context), and a prefix that short (a brief system prompt) stays reusable to the token. A sequence's cells
are then tiled from `TILED_FROM` to its tiled end and per-row elsewhere, and the cells a request may keep
are the ones a cold run of its own plan would compute with the same kernel (`reusable`).
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
    return max(TILED_FROM, prompt_tokens - prompt_tokens % TILE_ROWS) if tiling else 0


def in_tiles(position: int, tiled: int) -> bool:
    """Whether the prompt row at `position` is computed in a tile (it starts one: tiles are computed whole)."""
    return TILED_FROM <= position < tiled


def rows_until_tiles(position: int, tiled: int) -> int | None:
    """How many per-row prompt rows from `position` may go before the tiles begin (None: no tiles ahead)."""
    return TILED_FROM - position if position < TILED_FROM < tiled else None


def reusable(held: Cells, wanted: Cells, limit: int) -> int:
    """How many leading cells of `held` a request for `wanted` (its tokens, adapter and tiled end) may keep,
    at most `limit`, so that what it computes after them is what a cold run computes."""
    if held.adapter != wanted.adapter:
        return 0
    return keepable(min(shared_prefix(held.tokens, wanted.tokens), limit), held.tiled, wanted.tiled)


def keepable(shared: int, held_tiled: int, wanted_tiled: int) -> int:
    """Of `shared` leading cells tiled up to `held_tiled`, how many a request whose plan tiles up to
    `wanted_tiled` may keep: past its tiled end only per-row cells (the same tiled end held); before it,
    cells both compute alike, cut at a tile boundary past TILED_FROM so its tiled rows still come in whole
    tiles."""
    if shared >= wanted_tiled and held_tiled == wanted_tiled:
        return shared
    boundary = min(shared, held_tiled, wanted_tiled)
    return boundary if boundary <= TILED_FROM else boundary - boundary % TILE_ROWS
