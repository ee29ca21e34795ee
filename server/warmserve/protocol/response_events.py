"""The Responses API's stream: typed events, each numbered by `sequence_number` in the order sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from warmserve.protocol.base import WireModel
from warmserve.protocol.responses import OutputItem, OutputText, ResponseObject


class ResponseLifecycleEvent(WireModel):
    """response.created / in_progress / completed / incomplete / failed: the whole response so far."""

    type: Literal[
        "response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"
    ]
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    response: ResponseObject


class OutputItemEvent(WireModel):
    type: Literal["response.output_item.added", "response.output_item.done"]
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    output_index: int
    item: OutputItem


class ContentPartEvent(WireModel):
    type: Literal["response.content_part.added", "response.content_part.done"]
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDeltaEvent(WireModel):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = Field(default_factory=list)


class OutputTextDoneEvent(WireModel):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = Field(default_factory=list)


class ArgumentsDeltaEvent(WireModel):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(WireModel):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    item_id: str
    output_index: int
    name: str
    arguments: str


class ResponseErrorEvent(WireModel):
    type: Literal["error"] = "error"
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)
    code: str | None
    message: str
    param: str | None


ResponseEvent = (
    ResponseLifecycleEvent
    | OutputItemEvent
    | ContentPartEvent
    | OutputTextDeltaEvent
    | OutputTextDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
    | ResponseErrorEvent
)
