"""POST /v1/completions: raw prompts, one choice per prompt, streamed or whole."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import success_response
from warmserve.api.params import completion_requests, require_task, usage_of
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
from warmserve.protocol import Completion, CompletionChoice, CompletionRequest, Usage

router = APIRouter()
log = logging.getLogger(__name__)


@router.post(
    "/v1/completions",
    response_model=None,
    responses=success_response(Completion, "The completion, or an SSE stream of chunks."),
)
async def create_completion(body: CompletionRequest, request: Request, pools: Pools) -> Response:
    generations = completion_requests(body)
    pool = pools.get(body.model)
    require_task(pool.spec, "generate")
    streams = await until_disconnected(request, open_streams(pool, generations))
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        chunks = _chunks(streams, completion_id, created, body.model, body.include_usage(), body.n)
        return sse_response(chunks)
    try:
        results = await until_disconnected(request, collect_all(streams))
    finally:
        for stream in streams:
            stream.close()
    completion = Completion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            CompletionChoice(index=i, text=text, finish_reason=finished.finish_reason)
            for i, (text, finished) in enumerate(results)
        ],
        usage=usage_of([finished for _, finished in results], choices_per_prompt=body.n),
    )
    return JSONResponse(completion.model_dump(mode="json"))


async def _chunks(
    streams: list[RequestStream],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    choices_per_prompt: int,
) -> AsyncIterator[str]:
    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        body = Completion(id=completion_id, created=created, model=model, choices=choices, usage=usage)
        return sse_data(body.model_dump(mode="json"))

    text_chunks = [
        text_chunk_renderer(lambda text, i=i: chunk([CompletionChoice(index=i, text=text)]))  # type: ignore[misc]
        for i in range(len(streams))
    ]
    finished: dict[int, Finished] = {}
    try:
        async for index, event in merged(streams):
            if isinstance(event, TextDelta):
                yield text_chunks[index](event.text)
            elif isinstance(event, Finished):
                finished[index] = event
                yield chunk([CompletionChoice(index=index, text="", finish_reason=event.finish_reason)])
        if include_usage:
            yield chunk([], usage_of([finished[i] for i in sorted(finished)], choices_per_prompt))
        yield sse_data("[DONE]")
    except Exception as exc:  # after the 200 has gone out, an error event is all we can send
        if not isinstance(exc, WarmServeError):
            log.exception("stream failed")
        yield sse_error(exc)
    finally:
        for stream in streams:
            stream.close()
