"""A reasoning model's thinking block, told apart from its answer as the text streams.

Reasoning models (DeepSeek-R1 distills, Qwen3, SmolLM3 and their fine-tunes) write their
thinking between two markers (`<think>` and `</think>` for most) before the answer. The
engine tells the API process, when it admits a request, which markers the model uses and
where its output starts (`ReasoningStart`): inside the block when the prompt opened it,
else at a point where the model may open one itself. `ReasoningSplitter` then cuts the
text into thinking and answer, in the API process for the client, and in the worker,
which needs to know where the block ends (a thinking budget, a grammar that applies to
the answer only). One class does both, so they cannot disagree.

Only a block at the very start of the output counts (after whitespace), as in every peer
server: a model that writes the marker later is quoting it. Whitespace around the thinking
and between it and the answer is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["start", "thinking", "answer"]
Kind = Literal["reasoning", "content"]


@dataclass(frozen=True)
class ReasoningStart:
    """A reasoning model's markers and the phase its output begins in.

    `start`: the model may open a block; `thinking`: the prompt opened it; `answer`: thinking
    is off for this request (the prompt closed an empty block).
    """

    open: str
    close: str
    phase: Phase


class ReasoningSplitter:
    """Feed output text as it comes; get (kind, text) pieces in order, holding back only what may
    be part of a marker or whitespace that may turn out to border the thinking."""

    def __init__(self, start: ReasoningStart) -> None:
        self._open, self._close = start.open, start.close
        self.phase: Phase = start.phase
        self._buffer = ""
        self._answer_begun = False  # leading whitespace of an answer after a thinking block is dropped
        self._thinking_begun = False  # leading whitespace of the thinking is dropped
        self.closed = False  # the thinking block ended with its close marker

    def feed(self, text: str) -> list[tuple[Kind, str]]:
        self._buffer += text
        out: list[tuple[Kind, str]] = []
        while self._buffer:
            if self.phase == "start":
                lead = self._buffer.lstrip()
                if lead.startswith(self._open):
                    self._buffer = lead[len(self._open) :]
                    self.phase = "thinking"
                    continue
                if not lead or self._open.startswith(lead):
                    return out  # whitespace or part of the open marker: not known yet
                self.phase, self._answer_begun = "answer", True
                continue
            if self.phase == "thinking":
                if not self._thinking_begun:
                    self._buffer = self._buffer.lstrip()
                    if not self._buffer:
                        return out
                    self._thinking_begun = True
                end = self._buffer.find(self._close)
                if end >= 0:
                    _emit(out, "reasoning", self._buffer[:end].rstrip())
                    self._buffer = self._buffer[end + len(self._close) :]
                    self.phase, self.closed = "answer", True
                    continue
                # Hold back what may begin the close marker, and the whitespace before it (it may border the close).
                partial = _partial_suffix(self._buffer, self._close)
                head = self._buffer[: len(self._buffer) - partial]
                keep = partial + len(head) - len(head.rstrip())
                _emit(out, "reasoning", self._buffer[: len(self._buffer) - keep])
                self._buffer = self._buffer[len(self._buffer) - keep :]
                return out
            if not self._answer_begun:
                self._buffer = self._buffer.lstrip()
                if not self._buffer:
                    return out
                self._answer_begun = True
            _emit(out, "content", self._buffer)
            self._buffer = ""
        return out

    def finish(self) -> list[tuple[Kind, str]]:
        """The end of the output: what was held back (a cut-off thinking block stays thinking)."""
        rest, self._buffer = self._buffer, ""
        out: list[tuple[Kind, str]] = []
        if self.phase == "thinking":
            _emit(out, "reasoning", rest.rstrip())
        elif self.phase == "start":
            _emit(out, "content", rest)  # whitespace, or the start of an open marker cut off
        elif self._answer_begun:
            _emit(out, "content", rest)
        return out


def splitter_for(start: ReasoningStart | None) -> ReasoningSplitter | None:
    """A splitter for a request's output; None when it can hold no thinking block (plain text, or thinking off)."""
    return None if start is None or start.phase == "answer" else ReasoningSplitter(start)


def split_whole(text: str, start: ReasoningStart | None) -> tuple[str | None, str]:
    """A whole output as (thinking or None when there was none, answer)."""
    if start is None:
        return None, text
    splitter = ReasoningSplitter(start)
    pieces = splitter.feed(text) + splitter.finish()
    thinking = "".join(piece for kind, piece in pieces if kind == "reasoning")
    answer = "".join(piece for kind, piece in pieces if kind == "content")
    had_block = splitter.closed or splitter.phase == "thinking"
    return (thinking if had_block else None), answer


def _emit(out: list[tuple[Kind, str]], kind: Kind, text: str) -> None:
    if text:
        out.append((kind, text))


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0
