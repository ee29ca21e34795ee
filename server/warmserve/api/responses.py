"""POST /v1/responses and the stored responses: OpenAI's Responses API over the chat generation path.

A request's input items (after a stored conversation's, with `previous_response_id`) become
engine-neutral chat messages (api/response_items.py), tools and `text.format` become chat's
output plan, so a model answers exactly as it answers the same chat completion. A response
is stored (unless `store` is false or the server runs with --no-store) under the API key
that asked for it; only that key can read, continue or delete it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES, success_response
from warmserve.api.generations import Generations
from warmserve.api.params import effort_request, ignored_header, require_task, unsupported
from warmserve.api.response_events import ResponseEvents
from warmserve.api.response_items import Item, conversation, input_items, new_item_id, output_items, output_plan
from warmserve.api.response_store import ResponseStore, StoredResponse
from warmserve.api.sampling import sampling_fields
from warmserve.api.security import key_owner
from warmserve.api.streaming import SseFormat, sse_response
from warmserve.api.tool_calls import split_output
from warmserve.errors import InvalidRequest, PreviousResponseNotFound, ResponseNotFound
from warmserve.generation import Finished, GenerationRequest, SamplingParams, TextDelta
from warmserve.protocol import (
    DeletedResponse,
    IncompleteDetails,
    InputItemList,
    InputTokensDetails,
    InputTokensRequest,
    InputTokensResponse,
    OutputItem,
    OutputTokensDetails,
    ResponseObject,
    ResponsesInput,
    ResponsesRequest,
    ResponseUsage,
)
from warmserve.reasoning import split_whole

router = APIRouter()


@router.post(
    "/v1/responses",
    response_model=None,
    responses=success_response(ResponseObject, "The response, or an SSE stream of the Responses API's events."),
)
async def create_response(body: ResponsesRequest, request: Request, pools: Pools) -> Response:
    settings = request.app.state.settings
    headers = ignored_header(unsupported(body, settings.unsupported_parameters))
    pool = pools.route(body.model)
    require_task(pool.spec, "generate")
    owner = _owner(request)
    store: ResponseStore | None = request.app.state.responses if body.store else None  # None: keep nothing
    context = await _context(request, owner, body)
    items = input_items(body)
    plan = output_plan(body)
    # OpenAI's defaults unless the request or the model's defaults set them, echoed in the response.
    sampling = SamplingParams(max_tokens=body.max_output_tokens, **sampling_fields(body, pool.spec))
    generation = GenerationRequest(
        messages=conversation(body.instructions, [*context, *items], settings.max_messages),
        sampling=sampling,
        stream=body.stream,
        tools=plan.tools_json,
        constraint=plan.constraint,
        reasoning=effort_request(
            body.reasoning.effort if body.reasoning else None, pool.spec.reasoning, "reasoning.effort"
        ),
    )
    response = _created(new_item_id("resp"), body, sampling, store is not None)
    generations = await Generations.open(pool, [generation], request, response.id)

    async def keep(final: ResponseObject) -> None:
        if store is not None:
            record = StoredResponse(
                id=final.id,
                owner=owner,
                created_at=final.created_at,
                model=final.model,
                response=final.model_dump(mode="json"),
                input_items=items,
                context=context,
            )
            await store.put(record)

    [start] = generations.reasoning_starts()
    if body.stream:
        events = ResponseEvents(response, plan.tool_names, start)
        frames = _stream(generations, events, response, keep)
        return sse_response(frames, generations, SseFormat(error_event=events.failed), headers)
    async with generations:
        [result] = await generations.collect()
    thinking, answer = split_whole(result.text, start)
    text, calls = split_output(answer, plan.tool_names)
    complete = result.finished.finish_reason != "length"
    final = _finished(response, output_items(text or "", calls, complete, thinking), result.finished)
    await keep(final)
    return AsciiJSONResponse(final.model_dump(mode="json"), headers=headers)


@router.post("/v1/responses/input_tokens", responses=ERROR_RESPONSES)
async def count_input_tokens(body: InputTokensRequest, request: Request, pools: Pools) -> InputTokensResponse:
    """The prompt as a real call renders it (stored conversation and chat template included), counted."""
    settings = request.app.state.settings
    unsupported(body, settings.unsupported_parameters)
    pool = pools.route(body.model)
    require_task(pool.spec, "generate")
    context = await _context(request, _owner(request), body)
    messages = conversation(body.instructions, [*context, *input_items(body)], settings.max_messages)
    tokens = await pool.tokenize(GenerationRequest(messages=messages, tools=output_plan(body).tools_json))
    return InputTokensResponse(input_tokens=len(tokens))


@router.get(
    "/v1/responses/{response_id}",
    response_model=None,
    responses={
        200: {"model": ResponseObject, "description": "The stored response, as it was sent."},
        **ERROR_RESPONSES,
    },
)
async def retrieve_response(response_id: str, request: Request) -> Response:
    stored = await _stored(request, response_id)
    return AsciiJSONResponse(stored.response)


@router.delete("/v1/responses/{response_id}", responses=ERROR_RESPONSES)
async def delete_response(response_id: str, request: Request) -> DeletedResponse:
    store: ResponseStore | None = request.app.state.responses
    if store is None or not await store.delete(_owner(request), response_id):
        raise _not_found(response_id)
    return DeletedResponse(id=response_id)


@router.get(
    "/v1/responses/{response_id}/input_items",
    response_model=None,
    responses={200: {"model": InputItemList, "description": "The response's input items."}, **ERROR_RESPONSES},
)
async def list_input_items(
    response_id: str,
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    """The items that made up the response's input: the stored conversation's, then its own (OpenAI's listing)."""
    stored = await _stored(request, response_id)
    items = [*stored.context, *stored.input_items]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise InvalidRequest(f"No input item with id '{after}' in response '{response_id}'.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    listing = InputItemList(
        data=page,
        first_id=page[0]["id"] if page else None,
        last_id=page[-1]["id"] if page else None,
        has_more=len(items) > limit,
    )
    return AsciiJSONResponse(listing.model_dump(mode="json"))


def _owner(request: Request) -> str:
    return key_owner(request.headers.get("authorization"), request.headers.get("x-api-key"))


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII text escaped: what it echoes (a tool's schema, an item's arguments) may hold
    any JSON string, and UTF-8 cannot encode a lone surrogate, which JSON allows."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def _not_found(response_id: str) -> ResponseNotFound:
    return ResponseNotFound(f"No response with id '{response_id}' is stored for this API key.", param="response_id")


async def _stored(request: Request, response_id: str) -> StoredResponse:
    store: ResponseStore | None = request.app.state.responses
    stored = None if store is None else await store.get(_owner(request), response_id)
    if stored is None:
        raise _not_found(response_id)
    return stored


async def _context(request: Request, owner: str, body: ResponsesInput) -> list[Item]:
    """The items of the stored conversation that `previous_response_id` continues: all it saw, then its output."""
    if body.previous_response_id is None:
        return []
    store: ResponseStore | None = request.app.state.responses
    if store is None:
        raise InvalidRequest(
            "This server keeps no responses (it runs with --no-store), so none can be continued: send the "
            "whole conversation as input instead.",
            param="previous_response_id",
        )
    previous = await store.get(owner, body.previous_response_id)
    if previous is None:
        raise PreviousResponseNotFound(
            f"Previous response with id '{body.previous_response_id}' not found.", param="previous_response_id"
        )
    return [*previous.context, *previous.input_items, *previous.response["output"]]


def _created(response_id: str, body: ResponsesRequest, sampling: SamplingParams, stored: bool) -> ResponseObject:
    """The response as it starts: in progress, echoing the request's settings as OpenAI does."""
    return ResponseObject(
        id=response_id,
        created_at=int(time.time()),
        status="in_progress",
        instructions=body.instructions,
        max_output_tokens=body.max_output_tokens,
        model=body.model,
        output=[],
        parallel_tool_calls=body.parallel_tool_calls is not False,
        previous_response_id=body.previous_response_id,
        reasoning=body.reasoning,
        store=stored,
        temperature=sampling.temperature,
        text=body.text.model_dump(mode="json", by_alias=True, exclude_none=True)
        if body.text
        else {"format": {"type": "text"}},
        tool_choice=_echo_choice(body),
        tools=[tool.model_dump(mode="json", exclude_none=True) for tool in body.tools or ()],
        top_p=sampling.top_p,
        user=body.user,
        metadata=body.metadata or {},
    )


def _echo_choice(body: ResponsesRequest) -> object:
    if body.tool_choice is None:
        return "auto"
    return body.tool_choice if isinstance(body.tool_choice, str) else body.tool_choice.model_dump(mode="json")


def _finished(response: ResponseObject, output: list[OutputItem], finished: Finished) -> ResponseObject:
    cut = finished.finish_reason == "length"
    usage = ResponseUsage(
        input_tokens=finished.prompt_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=finished.cached_tokens),
        output_tokens=finished.completion_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=finished.reasoning_tokens),
        total_tokens=finished.prompt_tokens + finished.completion_tokens,
    )
    return response.model_copy(
        update={
            "status": "incomplete" if cut else "completed",
            "incomplete_details": IncompleteDetails(reason="max_output_tokens") if cut else None,
            "output": output,
            "usage": usage,
        }
    )


async def _stream(
    generations: Generations,
    events: ResponseEvents,
    response: ResponseObject,
    keep: Callable[[ResponseObject], Awaitable[None]],
) -> AsyncGenerator[str, None]:
    for frame in events.start():
        yield frame
    async for _, item in generations.events():
        if isinstance(item, TextDelta):
            for frame in events.feed(item.text):
                yield frame
        elif isinstance(item, Finished):
            for frame in events.finish(complete=item.finish_reason != "length"):
                yield frame
            final = _finished(response, events.items, item)
            await keep(final)
            yield events.end(final)
