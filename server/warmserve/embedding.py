"""What one embedding request asks for and what it yields, independent of any engine.

Like `generation`, these frozen dataclasses cross the process boundary (inside the
envelopes of `pool.messages`), so they hold plain data only. A vector travels as the
bytes of little-endian float32 values: compact to pickle, and exactly what OpenAI's
`encoding_format="base64"` sends, so the API encodes it without touching a float.
"""

from __future__ import annotations

import base64
import sys
from array import array
from dataclasses import dataclass

EmbedInput = str | tuple[int, ...]


@dataclass(frozen=True)
class EmbedRequest:
    """Texts, or token ids used as they are (no special tokens added), one vector each."""

    inputs: tuple[EmbedInput, ...]
    dimensions: int | None = None  # None: the model's own size

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("an EmbedRequest needs at least one input")


@dataclass(frozen=True)
class Embedded:
    """The answer: one unit-length vector per input, in input order, and the tokens read."""

    vectors: tuple[bytes, ...]  # float32, little-endian
    prompt_tokens: int


def unpack_vector(packed: bytes) -> list[float]:
    data = array("f")
    data.frombytes(packed)
    if sys.byteorder == "big":
        data.byteswap()
    return data.tolist()


def base64_vector(packed: bytes) -> str:
    """OpenAI's base64 encoding: the float32 little-endian bytes, base64-encoded."""
    return base64.b64encode(packed).decode("ascii")
