"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the chat generation path.

The conversation becomes engine-neutral chat messages (the system prompt first), so a
model answers a Messages request exactly as it answers the same chat completion. Its
errors take Anthropic's shape (api/errors.py, by path); so does a stream's error event.
A stream pings as Anthropic's does: after message_start, then whenever the model has been
silent for PING_INTERVAL_S (a long prefill). A queue wait comes before the response
starts, since message_start reports the prompt as the engine admitted it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import ANTHROPIC_ERROR_RESPONSES, anthropic_error_body, success_response
from warmserve.api.generations import Generations
from warmserve.api.params import ignored_header, require_few_messages, require_task, unsupported
from warmserve.api.sampling import sampling_fields
from warmserve.api.streaming import SseFormat, keep_alive, sse_data, sse_response, text_chunk_renderer
from warmserve.api.structured import OutputPlan, tool_plan
from warmserve.api.tool_calls import ToolCallParser, split_output
from warmserve.errors import InvalidRequest
from warmserve.generation import (
    ChatMessage,
    Finished,
    GenerationRequest,
    ReasoningRequest,
    SamplingParams,
    TextDelta,
    ToolCallData,
)
from warmserve.protocol import (
    ContentBlock,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    CountTokensRequest,
    CountTokensResponse,
    FunctionDefinition,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessageDeltaEvent,
    MessagesInput,
    MessagesRequest,
    MessageStartEvent,
    MessageStopEvent,
    MessagesUsage,
    NamedFunction,
    NamedToolChoice,
    PingEvent,
    SignatureDelta,
    StopReason,
    TextBlock,
    TextDeltaOut,
    ThinkingBlock,
    ThinkingDelta,
    ThinkingEnabled,
    ToolCall,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolDefinition,
    ToolResultBlockIn,
    ToolUseBlock,
    ToolUseBlockIn,
)
from warmserve.reasoning import Kind, ReasoningStart, split_whole, splitter_for

router = APIRouter()

MessageEvent = MessageStartEvent | ContentBlockStartEvent | ContentBlockStopEvent | MessageDeltaEvent | MessageStopEvent

# Anthropic's stream: typed events, an `error` event after the 200, and no done marker.
ANTHROPIC_SSE = SseFormat(error_event=lambda error: sse_data(anthropic_error_body(error), event="error"))

# Seconds of silence in a stream before a ping, so that proxies and clients see it alive.
PING_INTERVAL_S = 10.0
PING = sse_data(PingEvent().model_dump(mode="json"), event="ping")


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
    pool = pools.route(body.model)
    require_task(pool.spec, "generate")
    sampling = SamplingParams(
        max_tokens=body.max_tokens, stop=tuple(body.stop_sequences or ()), **sampling_fields(body, pool.spec)
    )
    plan = output_plan(body)
    generation = GenerationRequest(
        messages=conversation(body, settings.max_messages),
        sampling=sampling,
        stream=body.stream,
        tools=plan.tools_json,
        constraint=plan.constraint,
        reasoning=thinking_request(body),
    )
    message_id = f"msg_{uuid.uuid4().hex}"
    generations = await Generations.open(pool, [generation], request, message_id)
    [start] = generations.reasoning_starts()
    if body.stream:
        frames = _events(generations, message_id, body.model, plan.tool_names, start)
        return sse_response(keep_alive(frames, PING, PING_INTERVAL_S), generations, ANTHROPIC_SSE, headers)
    async with generations:
        [result] = await generations.collect()
    finished = result.finished
    thinking, answer = split_whole(result.text, start)
    text, calls = split_output(answer, plan.tool_names)
    content: list[ContentBlock] = (
        [] if thinking is None else [ThinkingBlock(thinking=thinking, signature=signature(thinking))]
    )
    content += [TextBlock(text=text or "")] if text or not calls else []
    content += [_tool_use(call) for call in calls]
    message = Message(
        id=message_id,
        model=body.model,
        content=content,
        stop_reason=stop_reason(finished, called=bool(calls)),
        stop_sequence=finished.stop_sequence,
        usage=usage(finished.prompt_tokens, finished.cached_tokens, finished.completion_tokens),
    )
    return JSONResponse(message.model_dump(mode="json"), headers=headers)


@router.post("/v1/messages/count_tokens", responses=ANTHROPIC_ERROR_RESPONSES)
async def count_tokens(body: CountTokensRequest, request: Request, pools: Pools) -> CountTokensResponse:
    """The prompt as a real call renders it (chat template included), counted by the model's tokenizer.

    As Anthropic counts it: the whole prompt, which a call splits into input_tokens and the cache fields.
    """
    settings = request.app.state.settings
    unsupported(body, settings.unsupported_parameters)
    pool = pools.route(body.model)
    tools = output_plan(body).tools_json
    tokens = await pool.tokenize(GenerationRequest(messages=conversation(body, settings.max_messages), tools=tools))
    return CountTokensResponse(input_tokens=len(tokens))


def thinking_request(body: MessagesRequest) -> ReasoningRequest | None:
    """Anthropic's `thinking` as a thinking budget; as Anthropic has it, the budget must leave room for an answer."""
    match body.thinking:
        case None:
            return None
        case ThinkingEnabled(budget_tokens=budget):
            if budget >= body.max_tokens:
                raise InvalidRequest(
                    f"'thinking.budget_tokens' ({budget}) must be less than 'max_tokens' ({body.max_tokens}), "
                    "which counts the thinking too.",
                    param="thinking.budget_tokens",
                )
            return ReasoningRequest(budget=budget, param="thinking")
        case _:
            return ReasoningRequest(budget=0, param="thinking")


def signature(thinking: str) -> str:
    """A thinking block's signature: a digest of its text (Anthropic's clients expect one; nothing checks it)."""
    return hashlib.sha256(thinking.encode()).hexdigest()


def output_plan(body: MessagesInput) -> OutputPlan:
    """The chat route's plan for tools and tool_choice, translated from Anthropic's terms."""
    choice: ToolChoice | None = None
    parallel: bool | None = None
    match body.tool_choice:
        case ToolChoiceNone():
            choice = "none"
        case ToolChoiceAny():
            choice = "required"
        case ToolChoiceTool(name=name):
            choice = NamedToolChoice(type="function", function=NamedFunction(name=name))
        case None:
            pass
        case _:
            choice = "auto"
    if body.tool_choice is not None and not isinstance(body.tool_choice, ToolChoiceNone):
        parallel = False if body.tool_choice.disable_parallel_tool_use else None
    if not body.tools and choice in ("none", "auto"):  # Anthropic allows these without tools
        choice = None
    tools = [
        ToolDefinition(
            type="function",
            function=FunctionDefinition(name=tool.name, description=tool.description, parameters=tool.input_schema),
        )
        for tool in body.tools or ()
    ]
    return tool_plan(tools, choice, parallel if tools else None, where=("name", "input_schema"))


def conversation(body: MessagesInput, max_messages: int) -> tuple[ChatMessage, ...]:
    """Engine-neutral chat messages: the system prompt first, then each turn's text and tool blocks.

    An assistant turn's tool_use blocks become its tool calls; a user turn's tool_result blocks
    become tool messages (before the turn's text), named after the call they answer.
    """
    require_few_messages(len(body.messages), max_messages, "messages")
    system = body.system_text()
    out = [ChatMessage(role="system", content=system)] if system else []
    called: dict[str, str] = {}
    for i, message in enumerate(body.messages):
        blocks = message.blocks()
        text = "".join(block.text for block in blocks if block.type == "text")
        uses = [block for block in blocks if isinstance(block, ToolUseBlockIn)]
        results = [block for block in blocks if isinstance(block, ToolResultBlockIn)]
        if (
            any(block.type not in ("text", "tool_use", "tool_result") for block in blocks)
            and message.role != "assistant"
        ):
            raise InvalidRequest("thinking blocks belong in assistant messages.", param=f"messages[{i}].content")
        if message.role == "assistant":
            if results:
                raise InvalidRequest("tool_result blocks belong in user messages.", param=f"messages[{i}].content")
            calls = tuple(ToolCallData(use.id, use.name, json.dumps(use.input)) for use in uses)
            called.update((call.id, call.name) for call in calls)
            out.append(ChatMessage(role="assistant", content=text, tool_calls=calls))
            continue
        if uses:
            raise InvalidRequest("tool_use blocks belong in assistant messages.", param=f"messages[{i}].content")
        for result in results:
            name = called.get(result.tool_use_id)
            out.append(ChatMessage(role="tool", content=result.text(), tool_call_id=result.tool_use_id, name=name))
        if text or not results:
            out.append(ChatMessage(role="user", content=text))
    return tuple(out)


def usage(prompt_tokens: int, cached_tokens: int, output_tokens: int) -> MessagesUsage:
    """The engine's counts in Anthropic's terms: input_tokens leaves out the prompt tokens read from the cache.

    warmserve's prefix cache is automatic (a slot keeps the last prompt's KV, and the next
    prompt sharing its start reuses it): reuse is a cache read, and nothing is ever a cache
    creation, since no request pays to write an entry that later ones could address.
    """
    return MessagesUsage(
        input_tokens=prompt_tokens - cached_tokens,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=cached_tokens,
        output_tokens=output_tokens,
    )


def stop_reason(finished: Finished, called: bool = False) -> StopReason:
    if finished.finish_reason == "length":
        return "max_tokens"
    if called:
        return "tool_use"
    return "stop_sequence" if finished.stop_sequence is not None else "end_turn"


def _tool_use(call: ToolCall) -> ToolUseBlock:
    return ToolUseBlock(id=call.id, name=call.function.name, input=json.loads(call.function.arguments))


async def _events(
    generations: Generations,
    message_id: str,
    model: str,
    tool_names: frozenset[str] = frozenset(),
    reasoning: ReasoningStart | None = None,
) -> AsyncGenerator[str, None]:
    [prompt_tokens] = generations.prompt_tokens()
    [cached_tokens] = generations.cached_tokens()
    start = Message(
        id=message_id,
        model=model,
        content=[],
        stop_reason=None,
        usage=usage(prompt_tokens, cached_tokens, 0),
    )
    yield _frame(MessageStartEvent(message=start))
    yield PING
    blocks = _Blocks(tool_names, reasoning)
    if not tool_names and not blocks.thinks:
        yield blocks.open_text()
    async for _, item in generations.events():
        if isinstance(item, TextDelta):
            for frame in blocks.feed(item.text):
                yield frame
        elif isinstance(item, Finished):
            for frame in blocks.finish():
                yield frame
            delta = MessageDelta(stop_reason=stop_reason(item, blocks.called), stop_sequence=item.stop_sequence)
            counts = usage(item.prompt_tokens, item.cached_tokens, item.completion_tokens)
            yield _frame(MessageDeltaEvent(delta=delta, usage=counts))
            yield _frame(MessageStopEvent())


class _Blocks:
    """A stream's content blocks: a reasoning model's thinking block first, text deltas into an open
    text block, each tool call a block of its own.

    Without tools or thinking there is one text block, opened before the first token; its deltas
    are rendered by the cheap per-token path.
    """

    def __init__(self, tool_names: frozenset[str], reasoning: ReasoningStart | None = None) -> None:
        self._parser = ToolCallParser(tool_names) if tool_names else None
        self._splitter = splitter_for(reasoning)
        self._thought: list[str] | None = None  # the open thinking block's text
        self._index = -1
        self._text_open = False
        self._answered = False  # a text or tool_use block was opened
        self.called = False
        self._text_delta = text_chunk_renderer(self._render_text)

    @property
    def thinks(self) -> bool:
        """Whether the output may begin with thinking (so no text block opens before it)."""
        return self._splitter is not None

    def _render_text(self, text: str) -> str:
        return _frame(ContentBlockDeltaEvent(index=self._index, delta=TextDeltaOut(text=text)))

    def open_text(self) -> str:
        self._index += 1
        self._text_open = self._answered = True
        self._text_delta = text_chunk_renderer(self._render_text)  # the frame carries the block's index
        return _frame(ContentBlockStartEvent(index=self._index, content_block=TextBlock(text="")))

    def feed(self, text: str) -> list[str]:
        if self._splitter is None:
            return self._answer(text)
        return self._split(self._splitter.feed(text))

    def _answer(self, text: str) -> list[str]:
        if self._parser is not None:
            return self._frames(self._parser.feed(text))
        if not text:
            return []
        return [*([] if self._text_open else [self.open_text()]), self._text_delta(text)]

    def _split(self, parts: list[tuple[Kind, str]]) -> list[str]:
        frames: list[str] = []
        for kind, text in parts:
            if kind == "content":
                frames += self._close_thinking() + self._answer(text)
                continue
            if self._thought is None:
                self._index += 1
                self._thought = []
                block = ThinkingBlock(thinking="", signature="")
                frames.append(_frame(ContentBlockStartEvent(index=self._index, content_block=block)))
            self._thought.append(text)
            frames.append(_frame(ContentBlockDeltaEvent(index=self._index, delta=ThinkingDelta(thinking=text))))
        return frames

    def _close_thinking(self) -> list[str]:
        if self._thought is None:
            return []
        digest = SignatureDelta(signature=signature("".join(self._thought)))
        self._thought = None
        return [
            _frame(ContentBlockDeltaEvent(index=self._index, delta=digest)),
            _frame(ContentBlockStopEvent(index=self._index)),
        ]

    def finish(self) -> list[str]:
        frames = self._split(self._splitter.finish()) + self._close_thinking() if self._splitter is not None else []
        frames += self._frames(self._parser.finish()) if self._parser is not None else []
        if not self._answered:  # no answer at all: one empty text block, as for any empty answer
            frames.append(self.open_text())
        if self._text_open:
            frames.append(_frame(ContentBlockStopEvent(index=self._index)))
            self._text_open = False
        return frames

    def _frames(self, pieces: list[str | ToolCall]) -> list[str]:
        frames: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                if not piece:
                    continue
                if not self._text_open:
                    frames.append(self.open_text())
                frames.append(self._text_delta(piece))
                continue
            if self._text_open:
                frames.append(_frame(ContentBlockStopEvent(index=self._index)))
                self._text_open = False
            self._index += 1
            self.called = self._answered = True
            use = ToolUseBlock(id=piece.id, name=piece.function.name, input={})
            frames.append(_frame(ContentBlockStartEvent(index=self._index, content_block=use)))
            delta = InputJsonDelta(partial_json=piece.function.arguments)
            frames.append(_frame(ContentBlockDeltaEvent(index=self._index, delta=delta)))
            frames.append(_frame(ContentBlockStopEvent(index=self._index)))
        return frames


def _frame(payload: MessageEvent | ContentBlockDeltaEvent) -> str:
    return sse_data(payload.model_dump(mode="json"), event=payload.type)
