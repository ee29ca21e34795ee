"""Constrained decoding: one request's grammar, enforced on every token it samples.

Both engines use llguidance. It was chosen on measurement (benchmarks/constrained_decoding.py,
results in benchmarks/results/constrained-decoding.json): computing and applying its token mask
costs a small fraction of what llama.cpp's own grammar sampler does, and is on par with
xgrammar's. One library for both engines also means one JSON Schema dialect and one set of
errors whichever engine runs a model. Grammars compile quickly enough to be compiled per
request, not cached; llguidance's table of a vocabulary's tokens is slow to build, so each
engine builds it once, on its first constrained request (`Grammars`).

The mask is applied to the logits before the engine's own sampler (penalties,
temperature, top_p, seeded draw) runs, so sampling settings keep their meaning within
what the grammar allows; each sampled token then advances the grammar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llguidance import LLMatcher, LLTokenizer

from warmserve.errors import BackendError, InvalidRequest
from warmserve.generation import Constraint


class TokenConstraint:
    def __init__(self, tokenizer: LLTokenizer, constraint: Constraint, n_vocab: int) -> None:
        self._matcher = LLMatcher(tokenizer, constraint.grammar, log_level=0)
        if self._matcher.is_error():
            raise InvalidRequest(f"The grammar failed to compile: {self._matcher.get_error()}", param=constraint.param)
        self._n_vocab = n_vocab
        self._words = np.zeros((tokenizer.vocab_size + 31) // 32, dtype=np.int32)

    @property
    def active(self) -> bool:
        """Whether it applies to the next token (always; a grammar after a thinking block waits for it)."""
        return True

    def allowed(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which tokens may come next, one bool per logit."""
        words = self._words
        self._matcher.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
        bits = np.unpackbits(words.view(np.uint8), bitorder="little").astype(np.bool_)
        if bits.size >= self._n_vocab:
            return bits[: self._n_vocab]
        return np.concatenate([bits, np.zeros(self._n_vocab - bits.size, dtype=np.bool_)])

    def mask(self, logits: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Forbid, in place, every token the grammar does not allow next."""
        logits[~self.allowed()] = -np.inf

    def accept(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise BackendError(f"The sampled token {token} broke the output grammar: {self._matcher.get_error()}")


class Grammars:
    """Constraints over one engine's vocabulary; llguidance's view of it is built on first use.

    `tokenizer` builds that view (each engine knows how: from llama.cpp's vocab, from a
    Hugging Face tokenizer); `n_logits` is the length of the engine's logits rows.
    """

    def __init__(self, tokenizer: Callable[[], LLTokenizer], n_logits: int) -> None:
        self._build = tokenizer
        self._tokenizer: LLTokenizer | None = None
        self._n_logits = n_logits

    def constraint(self, constraint: Constraint | None) -> TokenConstraint | None:
        """The request's grammar, ready to mask logits; None for an unconstrained request."""
        if constraint is None:
            return None
        if self._tokenizer is None:
            self._tokenizer = self._build()
        return TokenConstraint(self._tokenizer, constraint, self._n_logits)
