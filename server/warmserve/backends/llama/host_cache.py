"""The llama.cpp engine's use of the prompt cache: save a slot's cells before they are lost, restore a prefix.

When a request takes a slot, the engine keeps as much of the slot's cells as the request shares
(backends/llama/engine.py). Here, before that: if the host cache (backends/llama/prompt_cache.py) holds a
longer prefix of the request's tokens than the slot does, that state is restored into the slot and cut at
the shared prefix; and if the slot is about to lose many tokens' cells that no saved state covers, they
are saved first. Another slot of the worker that holds a still longer prefix (a request running on the
same system prompt) is copied the same way, through host memory: a copy of 1,500 tokens' cells takes
milliseconds, computing them seconds on a CPU. A restored state is the very cells a slot would have
kept, so the answer equals the one a cold run gives, as slot reuse does (tested with the real model).
What is saved is a sequence's cells: the prompt and output tokens computed in it, never sampler, grammar
or reasoning state, which every request builds afresh.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence

from warmserve.backends.llama.native import NativeModel
from warmserve.backends.llama.prompt_cache import Found, PromptCache
from warmserve.backends.tokens import shared_prefix
from warmserve.errors import BackendError
from warmserve.generation import PromptCacheStats

log = logging.getLogger(__name__)

# Fewer tokens than this are not worth a save or a restore: restoring copies the whole saved sequence
# (about 23 KB a token for SmolLM2-135M), and computing a few dozen tokens costs about as much.
SAVE_MIN = 32


class HostCache:
    def __init__(self, model: NativeModel, budget_bytes: int) -> None:
        self._model = model
        self._cache: PromptCache[ctypes.Array[ctypes.c_uint8]] = PromptCache(budget_bytes)

    @property
    def enabled(self) -> bool:
        return self._cache.enabled

    def stats(self) -> PromptCacheStats:
        return self._cache.stats()

    def take_slot(
        self,
        sequence: int,
        held: Sequence[int],
        held_adapter: str | None,
        tokens: Sequence[int],
        adapter: str | None,
        reused: int,
        others: Sequence[tuple[int, Sequence[int], str | None]] = (),
    ) -> int:
        """The slot `sequence` holding `held` goes to a request for `tokens` that shares `reused` of them;
        `others` are the worker's other slots (sequence, tokens held, adapter that computed them).

        Returns how many leading tokens of `tokens` the sequence holds now (the caller drops its cells past
        that point): `reused`, or more when a saved state or another slot's cells were restored.
        """
        if not self._cache.enabled:
            return reused
        limit = len(tokens) - 1  # at least one token is computed, for fresh logits
        found = self._cache.find(adapter, tokens)
        donor = max(((shared_prefix(t, tokens), s, t) for s, t, a in others if a == adapter), default=None)
        if donor is not None and min(donor[0], limit) - max(reused, found.length if found else 0) >= SAVE_MIN:
            found = self._snapshot(donor[1], donor[2], adapter, donor[0]) or found
        restoring = found is not None and min(found.length, limit) - reused >= SAVE_MIN
        kept = 0 if restoring else reused
        if len(held) - kept >= SAVE_MIN and not self._cache.covers(held_adapter, held):
            self._save(sequence, held, held_adapter)
        if found is None or not restoring:
            if reused < SAVE_MIN:
                self._cache.misses += 1
            return reused
        try:
            self._model.restore_sequence(sequence, found.blob)
        except BackendError as exc:
            log.warning("prompt cache: %s; computing the prompt instead", exc.message)
            return 0
        restored = min(found.length, limit)
        self._cache.hits += 1
        self._cache.restored_tokens += restored - reused
        return restored

    def drop(self, adapter: str) -> None:
        self._cache.drop(adapter)

    def clear(self) -> None:
        self._cache.clear()

    def _save(self, sequence: int, held: Sequence[int], adapter: str | None) -> None:
        try:
            blob = self._model.save_sequence(sequence)
        except BackendError as exc:
            log.warning("prompt cache: %s", exc.message)
            return
        self._cache.put(adapter, held, blob, len(blob))

    def _snapshot(
        self, sequence: int, held: Sequence[int], adapter: str | None, length: int
    ) -> Found[ctypes.Array[ctypes.c_uint8]] | None:
        """Another slot's cells, saved (they serve later requests too) and to be restored now."""
        try:
            blob = self._model.save_sequence(sequence)
        except BackendError as exc:
            log.warning("prompt cache: %s", exc.message)
            return None
        self._cache.put(adapter, list(held), blob, len(blob))
        return Found(blob, length, len(held))
