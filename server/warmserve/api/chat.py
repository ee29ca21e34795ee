"""POST /v1/chat/completions: validate, hand to the model's pool, shape the answer."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import success_response
from warmserve.api.params import chat_request, usage_of
from warmserve.api.streaming import (
    collect,
    open_streams,
    sse_data,
    sse_error,
    sse_response,
    text_chunk_renderer,
    until_disconnected,
)
from warmserve.errors import WarmServeError
from warmserve.generation import Finished, TextDelta
from warmserve.pool import RequestStream
from warmserve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
)

router = APIRouter()
log = logging.getLogger(__name__)


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=success_response(ChatCompletion, "The completion, or an SSE stream of chunks."),
)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, pools: Pools) -> Response:
    generation = chat_request(body, request.app.state.settings.max_messages)
    pool = pools.get(body.model)
    [stream] = await until_disconnected(request, open_streams(pool, [generation]))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        chunks = _chunks(stream, completion_id, created, body.model, body.include_usage())
        return sse_response(chunks)
    try:
        text, finished = await until_disconnected(request, collect(stream))
    finally:
        stream.close()
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[ChatChoice(index=0, message=AssistantMessage(content=text), finish_reason=finished.finish_reason)],
        usage=usage_of([finished]),
    )
    return JSONResponse(completion.model_dump(mode="json"))


async def _chunks(
    stream: RequestStream, completion_id: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(delta: ChatDelta, finish: Finished | None = None) -> str:
        choice = ChatChunkChoice(index=0, delta=delta, finish_reason=finish.finish_reason if finish else None)
        body = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice])
        return sse_data(body.model_dump(mode="json"))

    content_chunk = text_chunk_renderer(lambda text: chunk(ChatDelta(content=text)))
    try:
        yield chunk(ChatDelta(role="assistant", content=""))
        async for event in stream:
            if isinstance(event, TextDelta):
                yield content_chunk(event.text)
            elif isinstance(event, Finished):
                yield chunk(ChatDelta(), event)
                if include_usage:
                    usage = ChatCompletionChunk(
                        id=completion_id, created=created, model=model, choices=[], usage=usage_of([event])
                    )
                    yield sse_data(usage.model_dump(mode="json"))
        yield sse_data("[DONE]")
    except Exception as exc:  # after the 200 has gone out, an error event is all we can send
        if not isinstance(exc, WarmServeError):
            log.exception("stream failed")
        yield sse_error(exc)
    finally:
        stream.close()
