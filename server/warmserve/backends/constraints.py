"""Constrained decoding: one request's grammar, enforced on every token it samples.

Both engines use llguidance. It was chosen on measurement (benchmarks/constrained_decoding.py,
results in benchmarks/results/constrained-decoding.json; SmolLM2's 49152-token vocab, one
CPU thread, a shared and loaded machine): computing and applying a token mask costs
0.2-0.4 ms a token over the llama.cpp vocab and 0.05 ms over the Hugging Face tokenizer,
against 6-7 ms a token for llama.cpp's own grammar sampler (GBNF from llama-cpp-python's
schema converter) and 0.16 ms for xgrammar's mask. One library for both engines also
means one JSON Schema dialect and one set of errors whichever engine runs a model.
Grammars compile in 1-10 ms, so they are compiled per request, not cached; an engine
builds its vocabulary's token table once, on its first constrained request (about 0.5 s).

The mask is applied to the logits before the engine's own sampler (penalties,
temperature, top_p, seeded draw) runs, so sampling settings keep their meaning within
what the grammar allows; each sampled token then advances the grammar.
"""

from __future__ import annotations

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
