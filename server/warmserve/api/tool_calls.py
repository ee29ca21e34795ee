"""Tool calls out of generated text, whole or as it streams.

The model writes calls as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
(api/grammar.py enforces that shape whenever tools are in play). The parser passes any
other text through as content, holding back only a tail that may be the start of a
call block, so streamed content is not delayed by more than a few characters. A closed block
that does not parse, or names a function the request did not offer, stays content; an
unclosed one at the end (cut off by max_tokens) is a call if it parses, else dropped.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from warmserve.api.grammar import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from warmserve.protocol import FunctionCall, ToolCall


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_call(body: str, names: frozenset[str]) -> ToolCall | None:
    """One call block's JSON as a ToolCall, or None if it is not a call of a known function."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ToolCall(id=new_call_id(), function=FunctionCall(name=data["name"], arguments=text))


@dataclass
class ToolCallParser:
    """Feed text as it comes; get content pieces and complete calls, in order."""

    names: frozenset[str]
    calls: list[ToolCall] = field(default_factory=list)
    _buffer: str = ""
    _in_call: bool = False

    def feed(self, text: str) -> list[str | ToolCall]:
        self._buffer += text
        out: list[str | ToolCall] = []
        while True:
            if self._in_call:
                end = self._buffer.find(TOOL_CALL_CLOSE)
                if end < 0:
                    return out
                body, self._buffer = self._buffer[:end], self._buffer[end + len(TOOL_CALL_CLOSE) :]
                self._in_call = False
                out.append(self._call_or_text(body))
                continue
            start = self._buffer.find(TOOL_CALL_OPEN)
            if start >= 0:
                self._emit(out, self._buffer[:start])
                self._buffer = self._buffer[start + len(TOOL_CALL_OPEN) :]
                self._in_call = True
                continue
            hold = _partial_open(self._buffer)
            self._emit(out, self._buffer[: len(self._buffer) - hold])
            self._buffer = self._buffer[len(self._buffer) - hold :]
            return out

    def finish(self) -> list[str | ToolCall]:
        """The end of the output: an unclosed block is a call if its JSON is complete, else dropped (a call
        cut off by max_tokens: its markup is not content)."""
        out: list[str | ToolCall] = []
        rest, self._buffer = self._buffer, ""
        if self._in_call:
            self._in_call = False
            call = parse_call(rest, self.names)
            if call is not None:
                self.calls.append(call)
                out.append(call)
        else:
            self._emit(out, rest)
        return out

    def _call_or_text(self, body: str) -> str | ToolCall:
        call = parse_call(body, self.names)
        if call is None:
            return TOOL_CALL_OPEN + body + TOOL_CALL_CLOSE
        self.calls.append(call)
        return call

    def _emit(self, out: list[str | ToolCall], text: str) -> None:
        # Separators between calls are not content.
        if text and not (self.calls and not text.strip()):
            out.append(text)


def _partial_open(text: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of the open tag."""
    for size in range(min(len(TOOL_CALL_OPEN) - 1, len(text)), 0, -1):
        if text.endswith(TOOL_CALL_OPEN[:size]):
            return size
    return 0


def split_output(text: str, names: frozenset[str]) -> tuple[str | None, list[ToolCall]]:
    """A whole output as (content, calls); content is None when only calls were made.

    Without `names` (no tools offered, or tool_choice none) the whole output is content.
    """
    if not names:
        return text, []
    parser = ToolCallParser(names)
    pieces = parser.feed(text) + parser.finish()
    content = "".join(p for p in pieces if isinstance(p, str))
    if parser.calls and not content.strip():
        return None, parser.calls
    return content, parser.calls
