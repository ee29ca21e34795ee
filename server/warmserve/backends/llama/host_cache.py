"""The llama.cpp engine's use of the prompt cache: save a slot's cells before they are lost, restore a prefix.

When a request takes a slot, the engine keeps as much of the slot's cells as the request shares
(backends/llama/engine.py). Here, before that: if the host cache (backends/llama/prompt_cache.py) holds a
longer prefix of the request's tokens than the slot does, that state is restored into the slot and cut where
the request may keep its cells (backends/llama/tiling.py); and if the slot is about to lose many tokens' cells
that no saved state covers, they are saved first. Another slot of the worker that holds a still longer prefix
(a request running on the same system prompt) is copied the same way, through host memory: a copy of 1,500
tokens' cells takes milliseconds, computing them seconds on a CPU. A restored state is the very cells a slot
would have kept, so the answer equals the one a cold run gives, as slot reuse does (tested with the real
model). What is saved is a sequence's cells: the prompt and output tokens computed in it, never sampler,
grammar or reasoning state, which every request builds afresh.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from warmserve.backends.llama.native import NativeModel
from warmserve.backends.llama.prompt_cache import Found, PromptCache
from warmserve.backends.llama.tiling import Cells, keepable, reusable
from warmserve.errors import BackendError
from warmserve.generation import PromptCacheStats

log = logging.getLogger(__name__)

# Fewer tokens than this are not worth a save or a restore: restoring copies the whole saved sequence
# (about 23 KB a token for SmolLM2-135M), and computing a few dozen tokens costs about as much.
SAVE_MIN = 32


@dataclass(frozen=True)
class _Saved:
    """A sequence's cells in host memory, and where their tiled rows end (backends/llama/tiling.py)."""

    blob: ctypes.Array[ctypes.c_uint8]
    tiled: int


class HostCache:
    def __init__(self, model: NativeModel, budget_bytes: int) -> None:
        self._model = model
        self._cache: PromptCache[_Saved] = PromptCache(budget_bytes)

    @property
    def enabled(self) -> bool:
        return self._cache.enabled

    def stats(self) -> PromptCacheStats:
        return self._cache.stats()

    def take_slot(
        self, sequence: int, held: Cells, wanted: Cells, reused: int, others: Sequence[tuple[int, Cells]] = ()
    ) -> int:
        """The slot `sequence` holding `held` goes to a request for `wanted` that may keep `reused` of its cells;
        `others` are the worker's other slots (sequence, what their cells hold).

        Returns how many leading tokens of the request the sequence holds now (the caller drops its cells past
        that point): `reused`, or more when a saved state or another slot's cells were restored.
        """
        if not self._cache.enabled:
            return reused
        limit = len(wanted.tokens) - 1  # at least one token is computed, for fresh logits
        found = self._cache.find(wanted.adapter, wanted.tokens)
        length = 0 if found is None else keepable(min(found.length, limit), found.blob.tiled, wanted.tiled)
        donors = ((reusable(cells, wanted, limit), s, cells) for s, cells in others)
        donor = max(donors, key=lambda d: d[0], default=None)
        if donor is not None and donor[0] - max(reused, length) >= SAVE_MIN:
            snapshot = self._snapshot(donor[1], donor[2])
            if snapshot is not None:
                found, length = snapshot, donor[0]
        restoring = found is not None and length - reused >= SAVE_MIN
        kept = 0 if restoring else reused
        if len(held.tokens) - kept >= SAVE_MIN and not self._cache.covers(held.adapter, held.tokens):
            self._save(sequence, held)
        if found is None or not restoring:
            if reused < SAVE_MIN:
                self._cache.misses += 1
            return reused
        try:
            self._model.restore_sequence(sequence, found.blob.blob)
        except BackendError as exc:
            log.warning("prompt cache: %s; computing the prompt instead", exc.message)
            return 0
        self._cache.hits += 1
        self._cache.restored_tokens += length - reused
        return length

    def drop(self, adapter: str) -> None:
        self._cache.drop(adapter)

    def clear(self) -> None:
        self._cache.clear()

    def _save(self, sequence: int, held: Cells) -> _Saved | None:
        try:
            blob = self._model.save_sequence(sequence)
        except BackendError as exc:
            log.warning("prompt cache: %s", exc.message)
            return None
        saved = _Saved(blob, held.tiled)
        self._cache.put(held.adapter, held.tokens, saved, len(blob))
        return saved

    def _snapshot(self, sequence: int, held: Cells) -> Found[_Saved] | None:
        """Another slot's cells, saved (they serve later requests too) and to be restored now."""
        saved = self._save(sequence, Cells(list(held.tokens), held.adapter, held.tiled))
        return None if saved is None else Found(saved, len(held.tokens), len(held.tokens))
