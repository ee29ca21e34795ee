"""How far a request has come, as the API process saw it: what it needs to continue elsewhere.

A worker announces every token it draws (`Drawn`) before the text that token makes, in the
same message. So whenever a worker dies, the tokens recorded here are every token whose text
the client may have had, and `shown_chars` says how much of that text it did have. The
request then continues on another worker from exactly there (`continuation`): no text twice,
none missing. The same holds across Ray Serve replicas, whose streams relay `Drawn` in order.

A request that was running on each of two workers that died is taken for what killed them (a
poison request) and is not tried a third time. Running means the worker had started it (its
`Started` came back: workers send it before computing anything); a worker that died with the
request still on its way does not count.
"""

from __future__ import annotations

from dataclasses import replace

from warmserve.generation import (
    Continuation,
    Drawn,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Started,
    TextDelta,
    TokenLogprob,
)

POISON_AFTER = 2  # workers that died while running the request


class Progress:
    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.started: Started | None = None
        self.tokens: list[int] = []
        self.logprobs: list[TokenLogprob] = []
        self.shown_chars = 0  # text pushed towards the client
        self.shown_logprobs = 0
        self.deaths = 0  # workers (or replicas) that died while running it
        self._answered = False  # the worker holding it now has sent an event for it

    def observe(self, event: GenerationEvent) -> GenerationEvent | None:
        """The event as the client should see it, or None when it is the pool's alone (a drawn token,
        the repeated start of a resumed request)."""
        self._answered = True
        if isinstance(event, Drawn):
            self.tokens.append(event.token)
            if event.logprob is not None:
                self.logprobs.append(event.logprob)
            return None
        if isinstance(event, Started):
            if self.started is not None:
                return None
            self.started = event
        elif isinstance(event, TextDelta):
            self.shown_chars += len(event.text)
            self.shown_logprobs += len(event.logprobs)
        elif isinstance(event, Finished) and self.deaths and self.started is not None:
            # Usage counts the prompt's reuse where it first ran, not the resumed worker's refill.
            return replace(event, cached_tokens=self.started.cached_tokens)
        return event

    def died(self) -> bool:
        """The worker holding the request died: True when that makes it a poison request."""
        if self._answered:
            self.deaths += 1
        self._answered = False
        return self.deaths >= POISON_AFTER

    def continuation(self) -> GenerationRequest:
        """The request to send to the next worker: from the start if nothing was drawn yet, else
        carrying on after the tokens drawn so far (a seeded sample with a seed derived from where)."""
        if not self.tokens:
            return self.request
        seed = Continuation.seed_after(self.request.sampling.seed, len(self.tokens))
        resume = Continuation(tuple(self.tokens), tuple(self.logprobs), self.shown_chars, self.shown_logprobs, seed)
        return replace(self.request, resume=resume)
