"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, its events and its error body.

Text content only for now; `tools`, `tool_choice` and tool blocks are named in a 400 by
the route (api/messages.py). Unknown fields (e.g. `top_k`, `thinking`) are kept, as in
every request here, so the route can name them by the `unsupported_parameters` policy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from warmserve.protocol.base import MAX_TOKENS_LIMIT, NEUTRAL_VALUES, Text, WireModel


class TextBlockIn(WireModel):
    type: Literal["text"]
    text: Text
    cache_control: dict[str, Any] | None = Field(None, description="Accepted; prompt caching here is automatic.")


class MessageIn(WireModel):
    role: Literal["user", "assistant"]
    content: Text | list[TextBlockIn]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(block.text for block in self.content)


class MessagesInput(BaseModel):
    """What both routes read: the conversation as the model will see it."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(min_length=1, description="Served model name, as /v1/models lists it.")
    system: Text | list[TextBlockIn] | None = None
    messages: list[MessageIn] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = Field(None, description="Not supported yet: a non-empty list is a 400.")
    tool_choice: dict[str, Any] | None = Field(None, description="Not supported yet: a 400.")

    def system_text(self) -> str | None:
        if self.system is None:
            return None
        return self.system if isinstance(self.system, str) else "\n\n".join(block.text for block in self.system)

    def unsupported_sent(self) -> list[str]:
        extra = self.model_extra or {}
        return [
            name
            for name, value in extra.items()
            if value is not None and not (name in NEUTRAL_VALUES and NEUTRAL_VALUES[name] == value)
        ]


class MessagesRequest(MessagesInput):
    max_tokens: int = Field(ge=1, le=MAX_TOKENS_LIMIT, description="Required, as Anthropic requires it.")
    stop_sequences: list[Text] | None = Field(None, max_length=16)
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    metadata: dict[str, Any] | None = Field(None, description="Accepted (e.g. user_id); no effect on generation.")
    stream: bool = False


class CountTokensRequest(MessagesInput):
    pass


class CountTokensResponse(WireModel):
    input_tokens: int


class TextBlock(WireModel):
    type: Literal["text"] = "text"
    text: str


StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]


class MessagesUsage(WireModel):
    input_tokens: int
    output_tokens: int


class Message(WireModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[TextBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: MessagesUsage


# The stream: message_start, then per content block start / deltas / stop, then message_delta and message_stop.


class MessageStartEvent(WireModel):
    type: Literal["message_start"] = "message_start"
    message: Message


class ContentBlockStartEvent(WireModel):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: TextBlock


class TextDeltaOut(WireModel):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ContentBlockDeltaEvent(WireModel):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: TextDeltaOut


class ContentBlockStopEvent(WireModel):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDelta(WireModel):
    stop_reason: StopReason
    stop_sequence: str | None = None


class MessageDeltaEvent(WireModel):
    type: Literal["message_delta"] = "message_delta"
    delta: MessageDelta
    usage: MessagesUsage


class MessageStopEvent(WireModel):
    type: Literal["message_stop"] = "message_stop"


AnthropicErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
]


class AnthropicErrorDetail(WireModel):
    type: AnthropicErrorType
    message: str


class AnthropicErrorResponse(WireModel):
    type: Literal["error"] = "error"
    error: AnthropicErrorDetail
