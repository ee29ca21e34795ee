"""The Responses API's stream: typed events, each numbered by `sequence_number` in the order sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from warmserve.protocol.base import WireModel
from warmserve.protocol.responses import OutputItem, OutputText, ReasoningText, ResponseObject


class _Numbered(WireModel):
    sequence_number: int = 0  # set as the event is sent (api/response_events.py)


class _OfItem(_Numbered):
    """An event about one output item."""

    output_index: int


class _OfContent(_OfItem):
    """An event about one item's content (a message's text, a call's arguments)."""

    item_id: str


class _OfPart(_OfContent):
    content_index: int = 0  # one output_text part per message here


class ResponseLifecycleEvent(_Numbered):
    """response.created / in_progress / completed / incomplete / failed: the whole response so far."""

    type: Literal[
        "response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"
    ]
    response: ResponseObject


class OutputItemEvent(_OfItem):
    type: Literal["response.output_item.added", "response.output_item.done"]
    item: OutputItem


class ContentPartEvent(_OfPart):
    type: Literal["response.content_part.added", "response.content_part.done"]
    part: OutputText | ReasoningText


class OutputTextDeltaEvent(_OfPart):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str
    logprobs: list[Any] = Field(default_factory=list)


class OutputTextDoneEvent(_OfPart):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class ReasoningTextDeltaEvent(_OfPart):
    type: Literal["response.reasoning_text.delta"] = "response.reasoning_text.delta"
    delta: str


class ReasoningTextDoneEvent(_OfPart):
    type: Literal["response.reasoning_text.done"] = "response.reasoning_text.done"
    text: str
    logprobs: list[Any] = Field(default_factory=list)


class ArgumentsDeltaEvent(_OfContent):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    delta: str


class ArgumentsDoneEvent(_OfContent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    name: str
    arguments: str


class ResponseErrorEvent(_Numbered):
    type: Literal["error"] = "error"
    code: str | None
    message: str
    param: str | None


ResponseEvent = (
    ResponseLifecycleEvent
    | OutputItemEvent
    | ContentPartEvent
    | OutputTextDeltaEvent
    | OutputTextDoneEvent
    | ReasoningTextDeltaEvent
    | ReasoningTextDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
    | ResponseErrorEvent
)
