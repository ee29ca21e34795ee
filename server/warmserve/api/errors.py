"""Every error leaves the server as an OpenAI error body with the right status.

Typed errors carry their own status/type/code (errors.py); FastAPI's validation
errors become 400s naming the offending parameter; anything unexpected is logged
with its traceback and answered with a plain 500, never the traceback itself.
Routes under ANTHROPIC_PREFIX answer the same errors, same statuses, in Anthropic's
shape instead: its error type follows from the status (`ANTHROPIC_TYPES`), as
Anthropic documents it, so one table serves typed errors and HTTP errors alike.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from warmserve.errors import InvalidRequest, WarmServeError
from warmserve.protocol import (
    AnthropicErrorDetail,
    AnthropicErrorResponse,
    AnthropicErrorType,
    ErrorDetail,
    ErrorResponse,
)

log = logging.getLogger(__name__)

# nginx's "client closed request": logged, never seen by the departed client.
CLIENT_CLOSED_REQUEST = 499


# For the OpenAPI schema: the error statuses a route can answer with.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Invalid request, unsupported parameter or context length exceeded."),
        (401, "Missing or wrong API key."),
        (404, "Unknown model."),
        (413, "Request body too large."),
        (429, "Model at capacity; retry after the Retry-After header's seconds."),
        (500, "Internal error."),
        (503, "Model unavailable, queue timeout, server draining, or its worker died."),
        (504, "The request ran past its time limit."),
    )
}


# The same statuses, in Anthropic's shape: what routes under ANTHROPIC_PREFIX answer with.
ANTHROPIC_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {**response, "model": AnthropicErrorResponse} for status, response in ERROR_RESPONSES.items()
}


class ClientDisconnected(Exception):
    """The HTTP client left before the answer was ready."""


# The Anthropic Messages API's routes: their errors take Anthropic's shape.
ANTHROPIC_PREFIX = "/v1/messages"

ANTHROPIC_TYPES: dict[int, AnthropicErrorType] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def anthropic_type(status: int) -> AnthropicErrorType:
    return ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(error: WarmServeError) -> dict[str, object]:
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return ErrorResponse(error=detail).model_dump(mode="json")


def anthropic_error_body(error: WarmServeError) -> dict[str, object]:
    detail = AnthropicErrorDetail(type=anthropic_type(error.status_code), message=error.message)
    return AnthropicErrorResponse(error=detail).model_dump(mode="json")


def error_response(error: WarmServeError, path: str = "") -> JSONResponse:
    """`error` in the shape of the API that `path` (the request's) belongs to."""
    body = anthropic_error_body(error) if path.startswith(ANTHROPIC_PREFIX) else error_body(error)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers())


def _param_from_loc(loc: tuple[int | str, ...]) -> str | None:
    path = [part for part in loc if part != "body"]
    if not path or not isinstance(path[0], str):
        return None
    text = path[0]
    for part in path[1:]:
        # pydantic names the union member it tried ("str", "list[...]"); clients don't care.
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() and part not in {"str", "int", "float", "bool", "list", "dict"}:
            text += f".{part}"
    return text


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first: dict[str, Any] = dict(errors[0]) if errors else {"msg": "Invalid request body.", "loc": ()}
    reason = str(first.get("msg"))
    if first.get("type") == "json_invalid":
        context = first.get("ctx") or {}
        message = f"The request body is not valid JSON: {context.get('error', reason)}."
        return error_response(InvalidRequest(message), request.url.path)
    param = _param_from_loc(tuple(first.get("loc", ())))
    message = f"Invalid value for '{param}': {reason}." if param else f"Invalid request: {reason}."
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the request.)"
    return error_response(InvalidRequest(message, param=param), request.url.path)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body: dict[str, object]
    if request.url.path.startswith(ANTHROPIC_PREFIX):
        anthropic = AnthropicErrorDetail(type=anthropic_type(exc.status_code), message=str(exc.detail))
        body = AnthropicErrorResponse(error=anthropic).model_dump(mode="json")
    else:
        detail = ErrorDetail(
            message=str(exc.detail),
            type="invalid_request_error" if exc.status_code < 500 else "server_error",
            code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error"),
        )
        body = ErrorResponse(error=detail).model_dump(mode="json")
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _typed_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WarmServeError)
    return error_response(exc, request.url.path)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = WarmServeError("The server had an internal error while processing the request.")
    return error_response(error, request.url.path)


def _client_gone(_: Request, exc: Exception) -> Response:
    return Response(status_code=CLIENT_CLOSED_REQUEST)


# One server-sent event, as OpenAPI describes each event of a text/event-stream: its `data` is JSON text.
SSE_EVENT: dict[str, object] = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}


def success_response(
    model: type, description: str, errors: dict[int | str, dict[str, object]] = ERROR_RESPONSES
) -> dict[int | str, dict[str, object]]:
    """A 200 that is JSON `model`, or an SSE stream when the request asked for one; then `errors`."""
    return {
        200: {
            "model": model,
            "description": description,
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **errors,
    }


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnected, _client_gone)
    app.add_exception_handler(WarmServeError, _typed_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
