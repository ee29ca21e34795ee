"""How a failed request to warmserve reaches LangChain code.

Every error is raised as a class that is both the `openai` SDK's error (status, body and
response stay available) and LangChain's standard `langchain_core.exceptions` class, so
callers can catch either. Its text is the server's own message with the HTTP status and
the server's error code, decided from the status and code the server sent, never from the
message text.

    the server answered                       raised (LangChain base class)
    400 context_length_exceeded               OpenAIContextOverflowError (ContextOverflowError)
    400 anything else, e.g.                   OpenAIInvalidRequestError (ModelInvalidRequestError)
        unsupported_parameter
    401 (a server that checks API keys)       OpenAIAuthenticationError (ModelAuthenticationError)
    403                                       OpenAIPermissionDeniedError (ModelPermissionDeniedError)
    404 model_not_found                       OpenAIModelNotFoundError (ModelNotFoundError)
    429 (queue full: overloaded)              OpenAIRateLimitError (ModelRateLimitError)
    5xx worker_died, model_unavailable, ...   OpenAIAPIError (ModelAPIError)
    an error event in a stream after the 200  WarmServeStreamError (ModelAPIError), or
                                              OpenAIAPIContextOverflowError for a too long input
    no connection / no answer in time         OpenAIConnectionError / OpenAITimeoutError
    404 on POST /tokenize (no such endpoint)  TokenizationUnsupportedError (NotImplementedError)

The `OpenAI*` classes are langchain-openai's, the same ones `ChatOpenAI` raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from langchain_core.exceptions import ModelAPIError
from langchain_openai.chat_models.base import (
    OpenAIAPIContextOverflowError,
    OpenAIAPIError,
    OpenAIAuthenticationError,
    OpenAIConnectionError,
    OpenAIContextOverflowError,
    OpenAIInvalidRequestError,
    OpenAIModelNotFoundError,
    OpenAIPermissionDeniedError,
    OpenAIRateLimitError,
    OpenAITimeoutError,
)

__all__ = ["TokenizationUnsupportedError", "WarmServeStreamError", "translated_errors"]

CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"


class WarmServeStreamError(openai.APIError, ModelAPIError):
    """The server reported an error inside a stream it had already started (e.g. its worker died)."""


class TokenizationUnsupportedError(NotImplementedError):
    """The server has no tokenize endpoint, so it cannot count tokens for its model."""


def server_message(error: openai.APIError) -> str:
    """The `message` of the server's error body, or the SDK's text when there is none."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    return error.message


def server_code(error: openai.APIError) -> str | None:
    body = error.body
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _describe(error: openai.APIError, status: int | None) -> str:
    """'The model 'x' does not exist. (HTTP 404, model_not_found)'."""
    details = [f"HTTP {status}"] if status is not None else []
    code = server_code(error)
    if code:
        details.append(code)
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{server_message(error)}{suffix}"


def translate(error: openai.APIError, *, base_url: str, api_key_set: bool) -> openai.APIError:
    """The LangChain-typed error for one the `openai` SDK raised (see the module docstring)."""
    if isinstance(error, openai.APITimeoutError):
        return OpenAITimeoutError(request=error.request)
    if isinstance(error, openai.APIConnectionError):
        message = f"Cannot reach the warmserve server at {base_url}: {error.message} Is it running?"
        return OpenAIConnectionError(message=message, request=error.request)
    if isinstance(error, openai.APIStatusError):
        return _translate_status(error, api_key_set=api_key_set)
    if server_code(error) == CONTEXT_LENGTH_EXCEEDED:
        return OpenAIAPIContextOverflowError(
            message=_describe(error, None), request=error.request, body=error.body
        )
    return WarmServeStreamError(_describe(error, None), error.request, body=error.body)


def _translate_status(error: openai.APIStatusError, *, api_key_set: bool) -> openai.APIError:
    status = error.status_code
    message = _describe(error, status)
    kwargs: dict[str, Any] = {"message": message, "response": error.response, "body": error.body}
    if status == 400:
        if server_code(error) == CONTEXT_LENGTH_EXCEEDED:
            return OpenAIContextOverflowError(**kwargs)
        return OpenAIInvalidRequestError(**kwargs)
    if status == 401:
        if not api_key_set:
            kwargs["message"] += " No API key is configured: pass api_key=... or set WARMSERVE_API_KEY."
        return OpenAIAuthenticationError(**kwargs)
    if status == 403:
        return OpenAIPermissionDeniedError(**kwargs)
    if status == 404:
        return OpenAIModelNotFoundError(**kwargs)
    if status == 429:
        return OpenAIRateLimitError(**kwargs)
    if status >= 500:
        return OpenAIAPIError(**kwargs)
    return openai.APIStatusError(**kwargs)


@contextmanager
def translated_errors(*, base_url: str, api_key_set: bool) -> Iterator[None]:
    """Re-raise `openai` errors from the block as their LangChain-typed equivalents."""
    try:
        yield
    except openai.APIError as error:
        raise translate(error, base_url=base_url, api_key_set=api_key_set) from error
