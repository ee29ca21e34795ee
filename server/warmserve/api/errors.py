"""Every error leaves the server as an OpenAI error body with the right status.

Typed errors carry their own status/type/code (errors.py); FastAPI's validation
errors become 400s naming the offending parameter; anything unexpected is logged
with its traceback and answered with a plain 500, never the traceback itself.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from warmserve.errors import InvalidRequest, WarmServeError
from warmserve.protocol import ErrorDetail, ErrorResponse

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


class ClientDisconnected(Exception):
    """The HTTP client left before the answer was ready."""


def error_body(error: WarmServeError) -> dict[str, object]:
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return ErrorResponse(error=detail).model_dump(mode="json")


def error_response(error: WarmServeError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=error.status_code, headers=error.headers())


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


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first: dict[str, Any] = dict(errors[0]) if errors else {"msg": "Invalid request body.", "loc": ()}
    reason = str(first.get("msg"))
    if first.get("type") == "json_invalid":
        context = first.get("ctx") or {}
        message = f"The request body is not valid JSON: {context.get('error', reason)}."
        return error_response(InvalidRequest(message))
    param = _param_from_loc(tuple(first.get("loc", ())))
    message = f"Invalid value for '{param}': {reason}." if param else f"Invalid request: {reason}."
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the request.)"
    return error_response(InvalidRequest(message, param=param))


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = ErrorDetail(
        message=str(exc.detail),
        type="invalid_request_error" if exc.status_code < 500 else "server_error",
        code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error"),
    )
    body = ErrorResponse(error=detail).model_dump(mode="json")
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _typed_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WarmServeError)
    return error_response(exc)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(WarmServeError("The server had an internal error while processing the request."))


def _client_gone(_: Request, exc: Exception) -> Response:
    return Response(status_code=CLIENT_CLOSED_REQUEST)


# One server-sent event, as OpenAPI describes each event of a text/event-stream: its `data` is JSON text.
SSE_EVENT: dict[str, object] = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}


def success_response(model: type, description: str) -> dict[int | str, dict[str, object]]:
    """A 200 that is JSON `model`, or an SSE stream when the request asked for one."""
    return {
        200: {
            "model": model,
            "description": description,
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **ERROR_RESPONSES,
    }


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnected, _client_gone)
    app.add_exception_handler(WarmServeError, _typed_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
