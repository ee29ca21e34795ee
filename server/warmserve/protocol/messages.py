"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, its events and its error body.

Text, tool and thinking blocks; no images or documents. Anthropic's `top_k` and warmserve's other
sampling controls are `SamplingControls`. Unknown fields (e.g. `mcp_servers`) are kept, as in
every request here, so the route can name them by the `unsupported_parameters` policy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from warmserve.generation import THINKING_BUDGET_LIMIT
from warmserve.protocol.base import MAX_TOKENS_LIMIT, EchoedIn, Text, WireModel, unsupported_sent
from warmserve.protocol.chat import FunctionName
from warmserve.protocol.sampling import SamplingControls


def _str_or_list(value: object) -> str:
    return "str" if isinstance(value, str) else "list"


class TextBlockIn(EchoedIn):
    type: Literal["text"]
    text: Text
    cache_control: dict[str, Any] | None = Field(None, description="Accepted; prompt caching here is automatic.")


# A string, or a list of blocks: a 400 about a list names the block at fault, not "not a string".
TextOrBlocks = Annotated[
    Annotated[Text, Tag("str")] | Annotated[list[TextBlockIn], Tag("list")], Discriminator(_str_or_list)
]


class ToolUseBlockIn(EchoedIn):
    """A call the assistant made on an earlier turn."""

    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class ToolResultBlockIn(EchoedIn):
    """What a call returned, in the user turn after it."""

    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: TextOrBlocks | None = None
    is_error: bool | None = Field(None, description="Accepted; the result's text is what the model sees.")
    cache_control: dict[str, Any] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(block.text for block in self.content)


class ThinkingBlockIn(EchoedIn):
    """An earlier turn's thinking, sent back: accepted and left out of the prompt (reasoning models'
    templates drop past thinking too)."""

    type: Literal["thinking"]
    thinking: Text
    signature: str | None = None


class RedactedThinkingBlockIn(EchoedIn):
    type: Literal["redacted_thinking"]
    data: str


ContentBlockIn = Annotated[
    TextBlockIn | ToolUseBlockIn | ToolResultBlockIn | ThinkingBlockIn | RedactedThinkingBlockIn,
    Field(discriminator="type"),
]


class MessageIn(WireModel):
    role: Literal["user", "assistant"]
    content: Annotated[
        Annotated[Text, Tag("str")] | Annotated[list[ContentBlockIn], Tag("list")], Discriminator(_str_or_list)
    ]

    def blocks(self) -> list[ContentBlockIn]:
        return [TextBlockIn(type="text", text=self.content)] if isinstance(self.content, str) else self.content


class ToolIn(WireModel):
    type: Literal["custom"] | None = None
    name: FunctionName
    description: str | None = None
    input_schema: dict[str, Any] = Field(description="JSON Schema of the tool's input.")
    cache_control: dict[str, Any] | None = None


class ToolChoiceAuto(WireModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(WireModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(WireModel):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(WireModel):
    type: Literal["none"]


ToolChoiceIn = Annotated[ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")]


class MessagesInput(BaseModel):
    """What both routes read: the conversation as the model will see it."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(min_length=1, description="Served model name, as /v1/models lists it.")
    system: TextOrBlocks | None = None
    messages: list[MessageIn] = Field(min_length=1)
    tools: list[ToolIn] | None = Field(None, max_length=128)
    tool_choice: ToolChoiceIn | None = Field(None, description="Default: auto with tools.")

    def system_text(self) -> str | None:
        if self.system is None:
            return None
        return self.system if isinstance(self.system, str) else "\n\n".join(block.text for block in self.system)

    def unsupported_sent(self) -> list[str]:
        return unsupported_sent(self)


class ThinkingEnabled(WireModel):
    type: Literal["enabled"]
    budget_tokens: int = Field(
        ge=1, le=THINKING_BUDGET_LIMIT, description="Thinking tokens before the engine closes the block itself."
    )


class ThinkingDisabled(WireModel):
    type: Literal["disabled"]


ThinkingConfig = Annotated[ThinkingEnabled | ThinkingDisabled, Field(discriminator="type")]


class MessagesRequest(MessagesInput, SamplingControls):
    max_tokens: int = Field(ge=1, le=MAX_TOKENS_LIMIT, description="Required, as Anthropic requires it.")
    thinking: ThinkingConfig | None = Field(
        None,
        description="A reasoning model's thinking: on with a budget, or off. A 400 for a model that does not think.",
    )
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


class ToolUseBlock(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ThinkingBlock(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = Field(description="A digest of the thinking; nothing checks it when it is sent back.")


ContentBlock = ThinkingBlock | TextBlock | ToolUseBlock

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class MessagesUsage(WireModel):
    """Anthropic's split of the prompt: the three input fields add up to what count_tokens answers."""

    input_tokens: int = Field(description="Prompt tokens computed for this request (not read from the cache).")
    cache_creation_input_tokens: int = Field(
        0, description="Always 0: the prefix cache here is automatic, nothing is written to it at a price."
    )
    cache_read_input_tokens: int = Field(0, description="Prompt tokens whose KV was reused from an earlier request.")
    output_tokens: int


class Message(WireModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ContentBlock]
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
    content_block: ContentBlock


class TextDeltaOut(WireModel):
    type: Literal["text_delta"] = "text_delta"
    text: str


class InputJsonDelta(WireModel):
    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


class ThinkingDelta(WireModel):
    type: Literal["thinking_delta"] = "thinking_delta"
    thinking: str


class SignatureDelta(WireModel):
    type: Literal["signature_delta"] = "signature_delta"
    signature: str


class ContentBlockDeltaEvent(WireModel):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: TextDeltaOut | InputJsonDelta | ThinkingDelta | SignatureDelta


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


class PingEvent(WireModel):
    """Sent after message_start and whenever the stream would otherwise be silent for a while."""

    type: Literal["ping"] = "ping"


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
