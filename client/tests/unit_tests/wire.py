"""The server's own wire models (`warmserve.protocol`), to check what the unit tests send and fake.

A hand copy of the schema went stale as the server grew; the server package is installed in
this environment (the Makefile's `make install`), so the tests check against the real thing:
requests as the server parses them, the canned answers as the server would write them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

try:
    from warmserve.protocol import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionRequest,
        Completion,
        CompletionRequest,
        ErrorResponse,
        ModelCard,
        ResponseObject,
        ResponsesRequest,
    )
except ModuleNotFoundError as missing:
    raise RuntimeError(
        "The unit tests check requests against the server's wire models: install warmserve in this "
        "environment (`make install` at the repository root)."
    ) from missing

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "Completion",
    "CompletionRequest",
    "ErrorResponse",
    "ModelCard",
    "ResponseObject",
    "ResponsesRequest",
    "rejected",
    "valid",
]


@runtime_checkable
class _Request(Protocol):
    """A request model of the server's: it names the parameters it does not support."""

    def unsupported_sent(self) -> list[str]: ...


def rejected(body: dict[str, Any], request: type[BaseModel]) -> list[str]:
    """Why the server would answer this body with a 400: invalid fields, else unsupported ones; [] if none."""
    try:
        parsed = request.model_validate(body)
    except ValidationError as error:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    assert isinstance(parsed, _Request)
    return [f"{name}: unsupported parameter" for name in parsed.unsupported_sent()]


def valid(body: dict[str, Any], response: type[BaseModel]) -> dict[str, Any]:
    """`body`, once the server's response model accepts it (a canned answer it could really send)."""
    response.model_validate(body)
    return body
