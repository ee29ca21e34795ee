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
from warmserve.api.logprobs import chat_logprobs
from warmserve.api.params import chat_requests, ignored_header, require_task, unsupported, usage_of
from warmserve.api.streaming import (
    collect_all,
    merged,
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
    ChoiceLogprobs,
)

router = APIRouter()
log = logging.getLogger(__name__)


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=success_response(ChatCompletion, "The completion, or an SSE stream of chunks."),
)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, pools: Pools) -> Response:
    settings = request.app.state.settings
    headers = ignored_header(unsupported(body, settings.unsupported_parameters))
    generations = chat_requests(body, settings.max_messages)
    pool = pools.get(body.model)
    require_task(pool.spec, "generate")
    streams = await until_disconnected(request, open_streams(pool, generations))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return sse_response(_chunks(streams, completion_id, created, body.model, body.include_usage()), headers)
    try:
        results = await until_disconnected(request, collect_all(streams))
    finally:
        for stream in streams:
            stream.close()
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            ChatChoice(
                index=i,
                message=AssistantMessage(content=result.text),
                finish_reason=result.finished.finish_reason,
                logprobs=chat_logprobs(result.logprobs) if body.logprobs else None,
            )
            for i, result in enumerate(results)
        ],
        usage=usage_of([result.finished for result in results], choices_per_prompt=len(results)),
    )
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


async def _chunks(
    streams: list[RequestStream], completion_id: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(
        index: int, delta: ChatDelta, finish: Finished | None = None, logprobs: ChoiceLogprobs | None = None
    ) -> str:
        reason = finish.finish_reason if finish else None
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=reason, logprobs=logprobs)
        body = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice])
        return sse_data(body.model_dump(mode="json"))

    content_chunks = [
        text_chunk_renderer(lambda text, i=i: chunk(i, ChatDelta(content=text)))  # type: ignore[misc]
        for i in range(len(streams))
    ]
    finished: dict[int, Finished] = {}
    try:
        for index in range(len(streams)):
            yield chunk(index, ChatDelta(role="assistant", content=""))
        async for index, event in merged(streams):
            if isinstance(event, TextDelta) and event.logprobs:
                yield chunk(index, ChatDelta(content=event.text), logprobs=chat_logprobs(event.logprobs))
            elif isinstance(event, TextDelta):
                yield content_chunks[index](event.text)
            elif isinstance(event, Finished):
                finished[index] = event
                yield chunk(index, ChatDelta(), event)
        if include_usage:
            totals = usage_of([finished[i] for i in sorted(finished)], choices_per_prompt=len(streams))
            last = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[], usage=totals)
            yield sse_data(last.model_dump(mode="json"))
        yield sse_data("[DONE]")
    except Exception as exc:  # after the 200 has gone out, an error event is all we can send
        if not isinstance(exc, WarmServeError):
            log.exception("stream failed")
        yield sse_error(exc)
    finally:
        for stream in streams:
            stream.close()
