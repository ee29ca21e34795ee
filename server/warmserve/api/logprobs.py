"""Engine logprobs in OpenAI's two wire shapes: chat's per-token list and completions' parallel lists."""

from __future__ import annotations

from collections.abc import Sequence

from warmserve.generation import TokenLogprob
from warmserve.protocol import ChoiceLogprobs, CompletionLogprobs, TokenLogprobOut, TopLogprob


def token_text(token: bytes) -> str:
    """A token's text; bytes that are only part of a character are written as \\xNN escapes."""
    return token.decode("utf-8", errors="backslashreplace")


def chat_logprobs(logprobs: Sequence[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=token_text(lp.token),
                logprob=lp.logprob,
                bytes=list(lp.token),
                top_logprobs=[TopLogprob(token=token_text(t), logprob=p, bytes=list(t)) for t, p in lp.top],
            )
            for lp in logprobs
        ]
    )


def completion_logprobs(logprobs: Sequence[TokenLogprob], offset: int) -> CompletionLogprobs:
    """`offset`: characters of the choice's text before these tokens (the echoed prompt, earlier chunks)."""
    tokens = [token_text(lp.token) for lp in logprobs]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[{token_text(t): p for t, p in lp.top} for lp in logprobs],
        text_offset=offsets,
    )
