"""The fake engine's constrained decoding: the real grammar over a vocabulary of single bytes.

The fake keeps its usual words while the grammar allows them, then completes the
output the shortest way it can: bytes the grammar forces, else the first allowed of
a closing-first preference order, ending as soon as the grammar accepts. So a JSON
schema yields a small valid instance, a required tool call a minimal call, and
`auto` keeps the fake's plain text unless the prompt's last word is `<tool_call>`.
Deterministic, and it runs the same llguidance grammars the real engines do.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

from warmserve.errors import InvalidRequest
from warmserve.generation import Constraint

EOS = 256
# Closing first, so the output ends soon; inside a string, its closing quote first.
_PREFERRED = b'}]0f"a{'
_PREFERRED_IN_STRING = b'"a'


class _Bytes:
    eos_token_id = EOS
    bos_token_id = None
    tokens: ClassVar[list[bytes]] = [bytes([i]) for i in range(256)] + [b"\xff<eos>"]
    special_token_ids: ClassVar[list[int]] = [EOS]

    def __call__(self, text: bytes) -> list[int]:
        return list(text)


@lru_cache(maxsize=1)
def byte_tokenizer() -> LLTokenizer:
    return LLTokenizer(TokenizerWrapper(_Bytes()), slices=[])


class FakeConstrained:
    def __init__(self, constraint: Constraint) -> None:
        self._matcher = LLMatcher(byte_tokenizer(), constraint.grammar, log_level=0)
        if self._matcher.is_error():
            raise InvalidRequest(f"The grammar failed to compile: {self._matcher.get_error()}", param=constraint.param)
        self._following_words = True
        self._in_string = False

    def next_piece(self, piece: bytes) -> bytes | None:
        """What to output instead of `piece`; None ends the generation."""
        matcher = self._matcher
        if self._following_words:
            taken = matcher.try_consume_tokens(list(piece))
            if taken == len(piece):
                return self._emit(piece)
            self._following_words = False
            if taken:
                return self._emit(piece[:taken])
        allowed = matcher.compute_bitmask()
        if _allows(allowed, EOS):
            return None
        forced = matcher.compute_ff_bytes()
        if forced:
            matcher.consume_tokens(list(forced))
            return self._emit(forced)
        preferred = _PREFERRED_IN_STRING if self._in_string else _PREFERRED
        choice = next((b for b in preferred if _allows(allowed, b)), None)
        if choice is None:  # the lowest allowed byte, whitespace and control bytes last
            choice = next(b for b in (*range(33, 256), *range(33)) if _allows(allowed, b))
        matcher.consume_token(choice)
        return self._emit(bytes([choice]))

    def _emit(self, piece: bytes) -> bytes:
        escaped = False
        for byte in piece:
            if self._in_string and byte == 0x5C:  # backslash
                escaped = not escaped
                continue
            if byte == 0x22 and not escaped:  # quote
                self._in_string = not self._in_string
            escaped = False
        return piece


def _allows(bitmask: bytes, token: int) -> bool:
    return bool(bitmask[token // 8] >> (token % 8) & 1)
