"""Sampling for one sequence over a logits row, in torch, in the order SamplingParams describes.

Logit bias is added first; a constrained request's grammar then masks the row (backends/constraints.py),
so only tokens it allows can be drawn. The repetition penalty follows transformers' (a seen token's
positive logit divided by it, a negative one multiplied) over the last `repeat_last_n` tokens of prompt
and output; presence and frequency penalties follow OpenAI's formula over the output. Temperature 0 is
then greedy; otherwise temperature, then top_k, typical_p, top_p (nucleus) and min_p narrow the
distribution, as llama.cpp's chain does, and a generator seeded per request draws, so the same seed
gives the same sample whichever other requests share the batch. DRY, XTC and Mirostat are llama.cpp's
alone: a request for them is refused here too.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Sequence

import torch

from warmserve.backends.reasoning import OutputGrammar
from warmserve.errors import UnsupportedParameter
from warmserve.generation import SamplingParams
from warmserve.model_options import LLAMA_CPP_SAMPLERS, sampler_lacking


class TorchSampler:
    def __init__(
        self, params: SamplingParams, constraint: OutputGrammar | None = None, prompt: Sequence[int] = ()
    ) -> None:
        lacking = sampler_lacking("transformers", {name: getattr(params, name) for name in LLAMA_CPP_SAMPLERS})
        if lacking is not None:
            raise UnsupportedParameter(f"The transformers backend has no '{lacking}' sampler.", param=lacking)
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
        self._recent: _Window | None = None
        if params.repetition_penalty != 1.0 and params.repeat_last_n != 0:
            self._recent = _Window(None if params.repeat_last_n < 0 else params.repeat_last_n)
            for token in prompt:
                self._recent.push(token)

    def sample(self, logits: torch.Tensor) -> int:
        """Pick the next token from one row of logits (any device)."""
        params = self._params
        scores = logits.detach().to("cpu", torch.float32, copy=True)
        if self._bias is not None:
            scores[self._bias[0]] += self._bias[1]
        if self._constraint is not None and self._constraint.active:
            scores.masked_fill_(~torch.from_numpy(self._constraint.allowed()), float("-inf"))
        if self._recent is not None and self._recent.counts:
            ids = torch.tensor(list(self._recent.counts), dtype=torch.long)
            seen = scores[ids]
            penalty = params.repetition_penalty
            scores[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
        if self._counts and (params.presence_penalty or params.frequency_penalty):
            ids = torch.tensor(list(self._counts), dtype=torch.long)
            counts = torch.tensor(list(self._counts.values()), dtype=torch.float32)
            scores[ids] -= counts * params.frequency_penalty + params.presence_penalty
        if params.temperature == 0:
            token = int(torch.argmax(scores))
        else:
            scores /= params.temperature
            if 0 < params.top_k < scores.numel():
                scores[scores < torch.topk(scores, params.top_k).values[-1]] = float("-inf")
            if params.typical_p < 1.0:
                _typical(scores, params.typical_p)
            probs = torch.softmax(scores, dim=-1)
            if params.top_p < 1.0:
                probs = _nucleus(probs, params.top_p)
            if params.min_p > 0.0:
                probs[probs < params.min_p * probs.max()] = 0.0
            token = int(torch.multinomial(probs, 1, generator=self._generator))
        self.count(token)
        return token

    def replay(self, token: int) -> None:
        """Count a token drawn elsewhere (a resumed request's) as if sampled here: penalties and grammar."""
        self.count(token)
        self.accept(token)

    def count(self, token: int) -> None:
        """Count a token for the penalties: sampled, replayed, or fed instead of a sample (a thinking
        block's forced close)."""
        self._counts[token] += 1
        if self._recent is not None:
            self._recent.push(token)

    def accept(self, token: int) -> None:
        """Advance the grammar past a sampled token that is not the end of generation."""
        if self._constraint is not None:
            self._constraint.accept(token)


class _Window:
    """The tokens among the last `size` (None: all) and how often each occurs there."""

    def __init__(self, size: int | None) -> None:
        self._tokens: deque[int] = deque()
        self._size = size
        self.counts: Counter[int] = Counter()

    def push(self, token: int) -> None:
        self.counts[token] += 1
        if self._size is None:
            return
        self._tokens.append(token)
        if len(self._tokens) > self._size:
            old = self._tokens.popleft()
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = torch.sort(probs, descending=True)
    cumulative = torch.cumsum(sorted_probs, dim=-1)
    drop = cumulative - sorted_probs > top_p  # keep the smallest prefix reaching top_p, at least one
    sorted_probs[drop] = 0.0
    kept = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return kept / kept.sum()


def _typical(scores: torch.Tensor, mass: float) -> None:
    """Locally typical sampling, in place: keep the tokens whose surprise is closest to the distribution's
    entropy, the smallest such set reaching `mass` (at least one)."""
    logp = torch.log_softmax(scores, dim=-1)
    probs = logp.exp()
    entropy = -(probs * logp).nansum()
    order = torch.argsort((-logp - entropy).abs())
    sorted_probs = probs[order]
    drop = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > mass
    scores[order[drop]] = float("-inf")
