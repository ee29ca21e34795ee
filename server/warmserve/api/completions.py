"""POST /v1/completions: raw prompts, one choice per prompt, streamed or whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import success_response
from warmserve.api.generations import Generations
from warmserve.api.logprobs import completion_logprobs
from warmserve.api.params import best_of, completion_requests, ignored_header, require_task, unsupported, usage_of
from warmserve.api.streaming import OPENAI_SSE, sse_data, sse_response, text_chunk_renderer
from warmserve.generation import Finished, GenerationRequest, TextDelta
from warmserve.pool import Pool
from warmserve.protocol import Completion, CompletionChoice, CompletionRequest, Usage

router = APIRouter()


@router.post(
    "/v1/completions",
    response_model=None,
    responses=success_response(Completion, "The completion, or an SSE stream of chunks."),
)
async def create_completion(body: CompletionRequest, request: Request, pools: Pools) -> Response:
    headers = ignored_header(unsupported(body, request.app.state.settings.unsupported_parameters))
    pool = pools.route(body.model)
    require_task(pool.spec, "generate")
    generation_requests = completion_requests(body, pool.spec)
    # `echo`: each choice's text starts with its own prompt (a prompt of token ids detokenized once).
    candidates = body.candidates()
    prompts = [await _echo(pool, g) if body.echo else "" for g in generation_requests[::candidates]]
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    generations = await Generations.open(pool, generation_requests, request, completion_id)
    if body.stream:  # never with best_of above n: one stream per choice
        chunks = _chunks(generations, completion_id, created, body, [p for p in prompts for _ in range(candidates)])
        return sse_response(chunks, generations, OPENAI_SSE, headers)
    async with generations:
        generated = await generations.collect()
    results = best_of(generated, candidates, body.n)
    echoes = [p for p in prompts for _ in range(body.n)]
    completion = Completion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            CompletionChoice(
                index=i,
                text=echoes[i] + result.text,
                finish_reason=result.finished.finish_reason,
                logprobs=None if body.logprobs is None else completion_logprobs(result.logprobs, len(echoes[i])),
            )
            for i, result in enumerate(results)
        ],
        # As OpenAI bills it: every candidate's tokens count, the returned ones or not.
        usage=usage_of([result.finished for result in generated], choices_per_prompt=candidates),
    )
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


async def _echo(pool: Pool, generation: GenerationRequest) -> str:
    """The prompt as text; one sent as token ids is written out by the model's tokenizer."""
    if generation.prompt_tokens is not None:
        return await pool.detokenize(list(generation.prompt_tokens))
    return generation.prompt or ""


async def _chunks(
    generations: Generations, completion_id: str, created: int, request: CompletionRequest, echoes: list[str]
) -> AsyncGenerator[str, None]:
    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        body = Completion(id=completion_id, created=created, model=request.model, choices=choices, usage=usage)
        return sse_data(body.model_dump(mode="json"))

    text_chunks = [
        text_chunk_renderer(lambda text, i=i: chunk([CompletionChoice(index=i, text=text)]))  # type: ignore[misc]
        for i in range(len(generations))
    ]
    offsets = [len(echo) for echo in echoes]  # characters of each choice's text sent so far
    for index, echo in enumerate(echoes):
        if echo:
            yield text_chunks[index](echo)
    async for index, event in generations.events():
        if isinstance(event, TextDelta) and request.logprobs is not None:
            logprobs = completion_logprobs(event.logprobs, offsets[index])
            yield chunk([CompletionChoice(index=index, text=event.text, logprobs=logprobs)])
            offsets[index] += len(event.text)
        elif isinstance(event, TextDelta):
            yield text_chunks[index](event.text)
        elif isinstance(event, Finished):
            yield chunk([CompletionChoice(index=index, text="", finish_reason=event.finish_reason)])
    if request.include_usage():
        yield chunk([], usage_of(generations.finished(), request.n))
