"""POST /v1/chat/completions: validate, hand to the model's pool, shape the answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import success_response
from warmserve.api.generations import Collected, Generations
from warmserve.api.logprobs import chat_logprobs
from warmserve.api.params import chat_requests, ignored_header, require_task, unsupported, usage_of
from warmserve.api.streaming import OPENAI_SSE, sse_data, sse_response, text_chunk_renderer
from warmserve.api.structured import output_plan
from warmserve.api.tool_calls import ToolCallParser, split_output
from warmserve.generation import Finished, TextDelta, TokenLogprob
from warmserve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    ChoiceLogprobs,
    FinishReasonOut,
    FunctionCallDelta,
    ToolCall,
    ToolCallDelta,
)
from warmserve.reasoning import Kind, ReasoningStart, split_whole, splitter_for

router = APIRouter()


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=success_response(ChatCompletion, "The completion, or an SSE stream of chunks."),
)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, pools: Pools) -> Response:
    settings = request.app.state.settings
    headers = ignored_header(unsupported(body, settings.unsupported_parameters))
    pool = pools.route(body.model)  # an unknown model is a 404 before any grammar is compiled
    require_task(pool.spec, "generate")
    plan = output_plan(body)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    requests = chat_requests(body, pool.spec, settings.max_messages, plan)
    generations = await Generations.open(pool, requests, request, completion_id)
    names = plan.tool_names
    if body.stream:
        chunks = _chunks(generations, completion_id, created, body.model, body.include_usage(), names)
        return sse_response(chunks, generations, OPENAI_SSE, headers)
    async with generations:
        results = await generations.collect()
    starts = generations.reasoning_starts()
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            _choice(i, result, starts[i], names, with_logprobs=bool(body.logprobs)) for i, result in enumerate(results)
        ],
        usage=usage_of([result.finished for result in results], choices_per_prompt=len(results)),
    )
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


def _choice(
    index: int, result: Collected, start: ReasoningStart | None, tool_names: frozenset[str], with_logprobs: bool
) -> ChatChoice:
    """One choice: a reasoning model's thinking apart, then tool calls parsed out of the answer."""
    logprobs = chat_logprobs(result.logprobs) if with_logprobs else None
    finished = result.finished
    thinking, answer = split_whole(result.text, start)
    if not tool_names:
        message = AssistantMessage(content=answer, reasoning_content=thinking, reasoning=thinking)
        return ChatChoice(index=index, message=message, finish_reason=finished.finish_reason, logprobs=logprobs)
    content, calls = split_output(answer, tool_names)
    return ChatChoice(
        index=index,
        message=AssistantMessage(
            content=content, tool_calls=calls or None, reasoning_content=thinking, reasoning=thinking
        ),
        finish_reason=_finish_reason(finished, bool(calls)),
        logprobs=logprobs,
    )


def _finish_reason(finished: Finished, called: bool) -> FinishReasonOut:
    return "tool_calls" if called and finished.finish_reason == "stop" else finished.finish_reason


def _call_deltas(position: int, call: ToolCall) -> list[ChatDelta]:
    """OpenAI's shape: the call's id and name first, then its arguments."""
    head = ToolCallDelta(
        index=position, id=call.id, type="function", function=FunctionCallDelta(name=call.function.name, arguments="")
    )
    tail = ToolCallDelta(index=position, function=FunctionCallDelta(arguments=call.function.arguments))
    return [ChatDelta(tool_calls=[head]), ChatDelta(tool_calls=[tail])]


async def _chunks(
    generations: Generations,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    tool_names: frozenset[str] = frozenset(),
) -> AsyncGenerator[str, None]:
    def chunk(
        index: int, delta: ChatDelta, reason: FinishReasonOut | None = None, logprobs: ChoiceLogprobs | None = None
    ) -> str:
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=reason, logprobs=logprobs)
        body = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice])
        return sse_data(body.model_dump(mode="json"))

    content_chunks = [
        text_chunk_renderer(lambda text, i=i: chunk(i, ChatDelta(content=text)))  # type: ignore[misc]
        for i in range(len(generations))
    ]
    parsers = [ToolCallParser(tool_names) for _ in range(len(generations))] if tool_names else None
    calls_sent = [0] * len(generations)

    def pieces(index: int, items: list[str | ToolCall]) -> list[str]:
        out: list[str] = []
        for item in items:
            if isinstance(item, str):
                out.append(content_chunks[index](item))
            else:
                out.extend(chunk(index, delta) for delta in _call_deltas(calls_sent[index], item))
                calls_sent[index] += 1
        return out

    def answer(index: int, text: str, logprobs: tuple[TokenLogprob, ...]) -> list[str]:
        """Chunks of answer text (tool calls parsed out of it), with its tokens' logprobs."""
        if parsers is None:
            if logprobs:
                return [chunk(index, ChatDelta(content=text), logprobs=chat_logprobs(logprobs))]
            return [content_chunks[index](text)] if text else []
        out = pieces(index, parsers[index].feed(text))
        if logprobs:  # tool-call text is parsed, so its tokens' logprobs travel on their own
            out.append(chunk(index, ChatDelta(), logprobs=chat_logprobs(logprobs)))
        return out

    splitters = [splitter_for(start) for start in generations.reasoning_starts()]

    def split(index: int, parts: list[tuple[Kind, str]], logprobs: tuple[TokenLogprob, ...]) -> list[str]:
        """A reasoning model's text: thinking deltas, then answer chunks (which carry the logprobs)."""
        out = [
            chunk(index, ChatDelta(reasoning_content=text, reasoning=text))
            for kind, text in parts
            if kind == "reasoning"
        ]
        return out + answer(index, "".join(text for kind, text in parts if kind == "content"), logprobs)

    for index in range(len(generations)):
        yield chunk(index, ChatDelta(role="assistant", content=""))
    async for index, event in generations.events():
        splitter = splitters[index]
        if isinstance(event, TextDelta):
            if splitter is None and parsers is None and not event.logprobs:
                yield content_chunks[index](event.text)  # the per-token fast path
                continue
            frames = (
                answer(index, event.text, event.logprobs)
                if splitter is None
                else split(index, splitter.feed(event.text), event.logprobs)
            )
            for frame in frames:
                yield frame
        elif isinstance(event, Finished):
            if splitter is not None:
                for frame in split(index, splitter.finish(), ()):
                    yield frame
            called = False
            if parsers is not None:
                for piece in pieces(index, parsers[index].finish()):
                    yield piece
                called = bool(parsers[index].calls)
            yield chunk(index, ChatDelta(), _finish_reason(event, called))
    if include_usage:
        totals = usage_of(generations.finished(), choices_per_prompt=len(generations))
        last = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[], usage=totals)
        yield sse_data(last.model_dump(mode="json"))
