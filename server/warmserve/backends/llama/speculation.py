"""Prompt-lookup (n-gram) speculative decoding: what a sequence drafts, and when it drafts at all.

A sequence that repeats what it has read (quoting, extracting, rewriting a passage, editing code)
writes runs of tokens that already occur in its prompt or output. The drafter finds the last n
tokens earlier in that history (n from `ngram_max` down to `ngram_min`, the most recent occurrence)
and proposes the tokens that followed them; the engine feeds the draft behind the sequence's next
token in one decode, with logits at every row, and keeps the longest run the model agrees with plus
the model's own token after it.

Why the output is the one plain decoding draws, at any temperature: the engine samples row i with
the request's own sampler chain (and grammar, penalties, bias, reasoning budget), exactly as the next
plain step would, and goes on to row i + 1 only when the token it drew is the draft's. For a
deterministic drafter that is the standard speculative rejection rule: the draft token d is kept with
probability p(d) under the request's final distribution, and on a rejection the token drawn is
distributed as p without d, renormalised. It even draws the same random numbers in the same order,
so a seeded request gives the same text with and without speculation. It needs each verify row's
logits to equal the one-row decode's bitwise, which llama.cpp's CPU flash attention gives while a
sequence has at most 63 rows in a batch (measured; without flash attention they differ, see README).

Whether drafting pays is the policy's part (`SpeculativeOptions`): a CPU decode costs nearly in
proportion to its rows, so a sequence drafts only in small steps and while its drafts keep landing.
Drafts land all or nothing more often than not (a quote goes on, or the model leaves it), so the draft
length follows the last outcome: doubled after a draft landed whole, back to just past the accepted run
after one that did not; a rejected row costs a decode row for nothing.
"""

from __future__ import annotations

from dataclasses import replace

from warmserve.generation import Finished, GenerationEvent, Speculation
from warmserve.model_options import SpeculativeOptions

_SMOOTHING = 0.3  # weight of the newest verification in a sequence's acceptance average
_PAUSE_FIRST = 4  # steps a sequence whose drafts stopped landing waits before drafting again...
_PAUSE_MAX = 64  # ...doubling each time it fails again, up to this
_LENGTH_FIRST = 4  # tokens of a sequence's first draft


class NgramDrafter:
    """A token history with, for each n-gram size, where each n-gram last occurred with a token after it."""

    def __init__(self, tokens: list[int], ngram_min: int, ngram_max: int) -> None:
        self._tokens: list[int] = []
        self._sizes = range(ngram_max, ngram_min - 1, -1)
        self._last: dict[tuple[int, ...], int] = {}  # n-gram -> index just after its latest occurrence
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        for token in tokens:
            self.push(token)

    def push(self, token: int) -> None:
        """Add one token; the n-grams that end just before it now have a continuation."""
        history = self._tokens
        end = len(history)
        for n in self._sizes:
            if end >= n:
                self._last[tuple(history[end - n : end])] = end
        history.append(token)

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that followed the longest recent n-gram matching the history's end."""
        history = self._tokens
        if limit <= 0:
            return []
        for n in self._sizes:
            if len(history) < n:
                continue
            start = self._last.get(tuple(history[-n:]))
            if start is not None:
                return history[start : start + limit]
        return []


class SequenceSpeculation:
    """One request's drafter, its counts, and whether it drafts this step."""

    def __init__(self, settings: Speculation, options: SpeculativeOptions, history: list[int]) -> None:
        self._settings = settings
        self._options = options
        self._drafter = NgramDrafter(history, settings.ngram_min, settings.ngram_max)
        self._acceptance = 1.0  # running average of the share of drafted tokens the model drew too
        self._pause = 0  # steps left without drafting
        self._next_pause = _PAUSE_FIRST
        self._length = min(_LENGTH_FIRST, settings.draft_tokens)  # of the next draft
        self.drafted = 0
        self.accepted = 0

    def push(self, token: int) -> None:
        """A token of the output (drawn, forced or replayed)."""
        self._drafter.push(token)

    def draft(self, limit: int, decoding: int) -> list[int]:
        """This step's draft, at most `limit` tokens, while `decoding` sequences decode in the step."""
        if self._options.max_batch and decoding > self._options.max_batch:
            return []
        if self._pause:
            self._pause -= 1
            return []
        return self._drafter.draft(min(limit, self._length))

    def verified(self, drafted: int, accepted: int) -> None:
        """The model drew `accepted` of the `drafted` tokens; drafts that stop landing pause drafting."""
        self.drafted += drafted
        self.accepted += accepted
        whole = accepted == drafted
        self._length = min(2 * self._length if whole else max(2, accepted + 1), self._settings.draft_tokens)
        self._acceptance += _SMOOTHING * (accepted / drafted - self._acceptance)
        if self._acceptance >= self._options.min_acceptance:
            self._next_pause = _PAUSE_FIRST
            return
        self._pause = self._next_pause
        self._next_pause = min(2 * self._next_pause, _PAUSE_MAX)
        self._acceptance = self._options.min_acceptance  # a fresh chance after the pause


def settings_for(request: Speculation | None, options: SpeculativeOptions) -> Speculation | None:
    """A request's own settings, else its model's default; None: no drafting."""
    if request is None:
        if options.type == "off":
            return None
        request = Speculation(options.draft_tokens, options.ngram_min, options.ngram_max)
    return request if request.draft_tokens > 0 else None


def with_counts(events: list[GenerationEvent], speculation: SequenceSpeculation | None) -> list[GenerationEvent]:
    """A request's events, the last (when it is the finish) with what it drafted and what of that the model drew."""
    if speculation is None or not events or not isinstance(events[-1], Finished):
        return events
    done = replace(events[-1], drafted_tokens=speculation.drafted, accepted_tokens=speculation.accepted)
    return [*events[:-1], done]
