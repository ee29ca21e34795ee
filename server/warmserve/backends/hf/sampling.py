"""OpenAI sampling for one sequence over a logits row, in torch.

Logit bias is added first; temperature 0 is then greedy; otherwise temperature, then top_p (nucleus), then a draw
from a generator seeded per request, so the same seed gives the same sample
whichever other requests share the batch. Presence and frequency penalties follow
OpenAI's formula over the tokens generated so far. A constrained request's grammar
masks the row first (backends/constraints.py), so only tokens it allows can be drawn.
"""

from __future__ import annotations

import random
from collections import Counter

import torch

from warmserve.backends.reasoning import OutputGrammar
from warmserve.generation import SamplingParams


class TorchSampler:
    def __init__(self, params: SamplingParams, constraint: OutputGrammar | None = None) -> None:
        self._params = params
        self._constraint = constraint
        seed = params.seed if params.seed is not None else random.getrandbits(63)
        self._generator = torch.Generator(device="cpu")
        self._generator.manual_seed(seed % (2**63))
        self._counts: Counter[int] = Counter()
        self._bias: tuple[torch.Tensor, torch.Tensor] | None = None
        if params.logit_bias:
            ids, values = zip(*params.logit_bias, strict=True)
            self._bias = torch.tensor(ids, dtype=torch.long), torch.tensor(values, dtype=torch.float32)

    def sample(self, logits: torch.Tensor) -> int:
        """Pick the next token from one row of logits (any device)."""
        params = self._params
        scores = logits.detach().to("cpu", torch.float32, copy=True)
        if self._bias is not None:
            scores[self._bias[0]] += self._bias[1]
        if self._constraint is not None and self._constraint.active:
            scores.masked_fill_(~torch.from_numpy(self._constraint.allowed()), float("-inf"))
        if self._counts and (params.presence_penalty or params.frequency_penalty):
            ids = torch.tensor(list(self._counts), dtype=torch.long)
            counts = torch.tensor(list(self._counts.values()), dtype=torch.float32)
            scores[ids] -= counts * params.frequency_penalty + params.presence_penalty
        if params.temperature == 0:
            token = int(torch.argmax(scores))
        else:
            probs = torch.softmax(scores / params.temperature, dim=-1)
            if params.top_p < 1.0:
                probs = _nucleus(probs, params.top_p)
            token = int(torch.multinomial(probs, 1, generator=self._generator))
        self._counts[token] += 1
        return token

    def replay(self, token: int) -> None:
        """Count a token drawn elsewhere (a resumed request's) as if sampled here: penalties and grammar."""
        self.count(token)
        self.accept(token)

    def count(self, token: int) -> None:
        """Count a token fed instead of a sample (a thinking block's forced close) for the penalties."""
        self._counts[token] += 1

    def accept(self, token: int) -> None:
        """Advance the grammar past a sampled token that is not the end of generation."""
        if self._constraint is not None:
            self._constraint.accept(token)


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = torch.sort(probs, descending=True)
    cumulative = torch.cumsum(sorted_probs, dim=-1)
    drop = cumulative - sorted_probs > top_p  # keep the smallest prefix reaching top_p, at least one
    sorted_probs[drop] = 0.0
    kept = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return kept / kept.sum()
