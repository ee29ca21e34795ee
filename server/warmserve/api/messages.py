"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the chat generation path.

The conversation becomes engine-neutral chat messages (the system prompt first), so a
model answers a Messages request exactly as it answers the same chat completion. Its
errors take Anthropic's shape (api/errors.py, by path); so does a stream's error event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import ANTHROPIC_ERROR_RESPONSES, anthropic_error_body, success_response
from warmserve.api.generations import Generations
from warmserve.api.params import ignored_header, require_task, unsupported
from warmserve.api.streaming import SseFormat, sse_data, sse_response, text_chunk_renderer
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.generation import ChatMessage, Finished, GenerationRequest, SamplingParams, TextDelta
from warmserve.protocol import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    CountTokensRequest,
    CountTokensResponse,
    Message,
    MessageDelta,
    MessageDeltaEvent,
    MessagesInput,
    MessagesRequest,
    MessageStartEvent,
    MessageStopEvent,
    MessagesUsage,
    StopReason,
    TextBlock,
    TextDeltaOut,
)

router = APIRouter()

MessageEvent = MessageStartEvent | ContentBlockStartEvent | ContentBlockStopEvent | MessageDeltaEvent | MessageStopEvent

# Anthropic's stream: typed events, an `error` event after the 200, and no done marker.
ANTHROPIC_SSE = SseFormat(error_event=lambda error: sse_data(anthropic_error_body(error), event="error"))


@router.post(
    "/v1/messages",
    response_model=None,
    responses=success_response(
        Message, "The message, or an SSE stream of Anthropic's message events.", ANTHROPIC_ERROR_RESPONSES
    ),
)
async def create_message(body: MessagesRequest, request: Request, pools: Pools) -> Response:
    settings = request.app.state.settings
    headers = ignored_header(unsupported(body, settings.unsupported_parameters))
    pool = pools.get(body.model)
    require_task(pool.spec, "generate")
    sampling = SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(body.stop_sequences or ()),
    )
    generation = GenerationRequest(
        messages=conversation(body, settings.max_messages), sampling=sampling, stream=body.stream
    )
    message_id = f"msg_{uuid.uuid4().hex}"
    generations = await Generations.open(pool, [generation], request, message_id)
    if body.stream:
        return sse_response(_events(generations, message_id, body.model), generations, ANTHROPIC_SSE, headers)
    async with generations:
        [result] = await generations.collect()
    finished = result.finished
    message = Message(
        id=message_id,
        model=body.model,
        content=[TextBlock(text=result.text)],
        stop_reason=stop_reason(finished),
        stop_sequence=finished.stop_sequence,
        usage=MessagesUsage(input_tokens=finished.prompt_tokens, output_tokens=finished.completion_tokens),
    )
    return JSONResponse(message.model_dump(mode="json"), headers=headers)


@router.post("/v1/messages/count_tokens", responses=ANTHROPIC_ERROR_RESPONSES)
async def count_tokens(body: CountTokensRequest, request: Request, pools: Pools) -> CountTokensResponse:
    """The prompt as a real call renders it (chat template included), counted by the model's tokenizer."""
    settings = request.app.state.settings
    unsupported(body, settings.unsupported_parameters)
    pool = pools.get(body.model)
    tokens = await pool.tokenize(GenerationRequest(messages=conversation(body, settings.max_messages)))
    return CountTokensResponse(input_tokens=len(tokens))


def conversation(body: MessagesInput, max_messages: int) -> tuple[ChatMessage, ...]:
    """Engine-neutral chat messages: the system prompt first, then the turns' text."""
    if body.tools or body.tool_choice is not None:
        param = "tools" if body.tools else "tool_choice"
        raise UnsupportedParameter(f"'{param}' is not supported yet on /v1/messages.", param=param)
    if len(body.messages) > max_messages:
        raise InvalidRequest(
            f"Too many messages: {len(body.messages)}; this server accepts at most {max_messages}.", param="messages"
        )
    system = body.system_text()
    turns = tuple(ChatMessage(role=m.role, content=m.text()) for m in body.messages)
    return ((ChatMessage(role="system", content=system),) if system else ()) + turns


def stop_reason(finished: Finished) -> StopReason:
    if finished.finish_reason == "length":
        return "max_tokens"
    return "stop_sequence" if finished.stop_sequence is not None else "end_turn"


async def _events(generations: Generations, message_id: str, model: str) -> AsyncGenerator[str, None]:
    def event(payload: MessageEvent) -> str:
        return sse_data(payload.model_dump(mode="json"), event=payload.type)

    [input_tokens] = generations.prompt_tokens()
    start = Message(
        id=message_id,
        model=model,
        content=[],
        stop_reason=None,
        usage=MessagesUsage(input_tokens=input_tokens, output_tokens=0),
    )
    text_delta = text_chunk_renderer(
        lambda text: sse_data(
            ContentBlockDeltaEvent(index=0, delta=TextDeltaOut(text=text)).model_dump(mode="json"),
            event="content_block_delta",
        )
    )
    yield event(MessageStartEvent(message=start))
    yield event(ContentBlockStartEvent(index=0, content_block=TextBlock(text="")))
    async for _, item in generations.events():
        if isinstance(item, TextDelta):
            if item.text:
                yield text_delta(item.text)
        elif isinstance(item, Finished):
            yield event(ContentBlockStopEvent(index=0))
            delta = MessageDelta(stop_reason=stop_reason(item), stop_sequence=item.stop_sequence)
            usage = MessagesUsage(input_tokens=item.prompt_tokens, output_tokens=item.completion_tokens)
            yield event(MessageDeltaEvent(delta=delta, usage=usage))
            yield event(MessageStopEvent())
