"""Turning a stream of token bytes into the text a client sees.

Shared by every engine so that stop strings, UTF-8 and usage behave the same
whichever engine produced the tokens.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from warmserve.backends.reasoning import Thinking
from warmserve.generation import (
    Continuation,
    Drawn,
    Finished,
    FinishReason,
    GenerationEvent,
    TextDelta,
    TokenLogprob,
)


class StopMatcher:
    """Cuts output at the first stop string, holding back text that may begin one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.matched: str | None = None  # the stop string found, once one is

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was found)."""
        if not self._stops:
            return text, False
        buffer = self._pending + text
        hits = [(i, stop) for stop in self._stops if (i := buffer.find(stop)) >= 0]
        if hits:
            self._pending = ""
            at, self.matched = min(hits, key=lambda hit: hit[0])
            return buffer[:at], True
        hold = self._longest_stop_prefix_suffix(buffer)
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold], False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text

    def _longest_stop_prefix_suffix(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest


@dataclass
class OutputTracker:
    """Per-request output state: UTF-8 decoding, stop strings, the token budget and logprobs.

    With `with_logprobs`, each token's logprob leaves with the text delta that first shows
    any of its characters; tokens wholly inside a stop string, or cut off unshown, are dropped
    with their text, so the logprobs always describe the text the client got.

    Every token that does not end the request is announced first as `Drawn`, so the pool can
    continue the request on another worker; `replay` is that continuation's side here.
    """

    prompt_tokens: int
    max_tokens: int
    stop: tuple[str, ...]
    cached_tokens: int = 0
    with_logprobs: bool = False
    thinking: Thinking | None = None  # a reasoning model's request: its thinking tokens are counted there
    completion_tokens: int = 0
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    _matcher: StopMatcher = field(init=False)
    _pending: list[tuple[int, TokenLogprob]] = field(default_factory=list)  # (first char offset, logprob)
    _decoded_chars: int = 0
    _shown_chars: int = 0
    _owed: list[GenerationEvent] = field(default_factory=list)  # replayed text the client has not had

    def __post_init__(self) -> None:
        self._matcher = StopMatcher(self.stop)

    def push(self, token: int, piece: bytes, logprob: TokenLogprob | None = None) -> list[GenerationEvent]:
        """Account one generated token (its id and bytes); events end with Finished when the request is done."""
        self.completion_tokens += 1
        decoded = self._decoder.decode(piece)
        if logprob is not None:
            self._pending.append((self._decoded_chars, logprob))
        self._decoded_chars += len(decoded)
        text, stopped = self._matcher.feed(decoded)
        if stopped:
            return self._events(text, "stop")
        if self.completion_tokens >= self.max_tokens:
            return self._events(text + self._drain(), "length", everything=True)
        return [*self._take_owed(), Drawn(token, logprob), *self._delta(text)]

    def end_of_generation(self) -> list[GenerationEvent]:
        """The model emitted an end-of-generation token (not counted as output)."""
        return self._events(self._drain(), "stop", everything=True)

    def replay(self, resume: Continuation, pieces: list[bytes]) -> None:
        """Account a dead worker's tokens (`pieces` are their bytes) as if generated here; the text of
        theirs the client has not had yet goes out with the next token's."""
        logprobs: list[TokenLogprob | None] = [*resume.logprobs] if self.with_logprobs else []
        logprobs += [None] * (len(pieces) - len(logprobs))
        text, released = "", list[TokenLogprob]()
        for token, piece, logprob in zip(resume.tokens, pieces, logprobs, strict=True):
            for event in self.push(token, piece, logprob):
                if isinstance(event, TextDelta):
                    text += event.text
                    released += event.logprobs
        unseen_text, unseen = text[resume.shown_chars :], tuple(released[resume.shown_logprobs :])
        if unseen_text or unseen:
            self._owed = [TextDelta(unseen_text, unseen)]

    def _take_owed(self) -> list[GenerationEvent]:
        owed, self._owed = self._owed, []
        return owed

    def _drain(self) -> str:
        # Bytes of a character the output was cut off in the middle of are dropped, not shown as U+FFFD.
        self._decoder.reset()
        tail, stopped = self._matcher.feed("")
        return tail if stopped else tail + self._matcher.flush()

    def _delta(self, text: str, everything: bool = False) -> list[GenerationEvent]:
        if not self.with_logprobs:
            return [TextDelta(text)] if text else []
        self._shown_chars += len(text)
        if everything:
            released, self._pending = self._pending, []
        else:
            cut = next((i for i, (start, _) in enumerate(self._pending) if start >= self._shown_chars), None)
            cut = len(self._pending) if cut is None else cut
            released, self._pending = self._pending[:cut], self._pending[cut:]
        logprobs = tuple(logprob for _, logprob in released)
        return [TextDelta(text, logprobs)] if text or logprobs else []

    def _events(self, text: str, reason: FinishReason, everything: bool = False) -> list[GenerationEvent]:
        done = Finished(
            reason,
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            stop_sequence=self._matcher.matched,
            reasoning_tokens=0 if self.thinking is None else self.thinking.reasoning_tokens,
        )
        return [*self._take_owed(), *self._delta(text, everything), done]
