"""POST /v1/chat/completions: messages, tools, response formats, answers and stream chunks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    model_serializer,
    model_validator,
)

from warmserve.generation import Effort
from warmserve.protocol.base import MAX_TOKENS_LIMIT, FinishReasonOut, SamplingFields, Text, Usage, WireModel


class TextContentPart(WireModel):
    type: Literal["text"]
    text: Text


FunctionName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class FunctionCall(WireModel):
    name: str
    arguments: str = Field(description="The call's arguments as JSON text.")


class ToolCall(WireModel):
    """A function call: in an assistant message of a response, or sent back in a later request."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessageIn(WireModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: None = None  # an echoed OpenAI assistant message carries `"refusal": null`

    @model_validator(mode="after")
    def _shape_fits_the_role(self) -> ChatMessageIn:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("'content' is required, except in an assistant message with 'tool_calls'")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry 'tool_calls'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the 'tool_call_id' of the call it answers")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDefinition(WireModel):
    name: FunctionName
    description: Text | None = None
    parameters: dict[str, Any] | None = Field(None, description="JSON Schema of the arguments; none: no arguments.")
    strict: bool | None = Field(None, description="Arguments always follow `parameters` here, strict or not.")


class ToolDefinition(WireModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(WireModel):
    name: str


class NamedToolChoice(WireModel):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(WireModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: FunctionName
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="None: any JSON object.")
    strict: bool | None = Field(None, description="The output always follows the schema here, strict or not.")


class TextFormat(WireModel):
    type: Literal["text"]


class JsonObjectFormat(WireModel):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(WireModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    logprobs: bool | None = Field(None, description="Return the log probability of each output token.")
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="With logprobs: also the most likely alternatives at each position."
    )
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = Field(None, description="Default: auto with tools, none without.")
    parallel_tool_calls: bool | None = Field(None, description="Default true: one or more calls per turn.")
    reasoning_effort: Effort | None = Field(
        None,
        description="A reasoning model's thinking: its template's switch and a budget of thinking tokens per "
        "level (the model spec's reasoning.effort_budgets); none = no thinking. A 400 for a model that does not think.",
    )
    chat_template_kwargs: dict[str, Any] | None = Field(
        None,
        description="Extra variables for the model's chat template (vLLM's convention), such as "
        '{"enable_thinking": false}.',
    )

    def output_limit(self) -> int | None:
        """`max_completion_tokens` is the current name; `max_tokens` the deprecated one."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class TopLogprob(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(WireModel):
    """Chat: one entry per output token."""

    content: list[TokenLogprobOut] | None
    refusal: list[TokenLogprobOut] | None = None


class AssistantMessage(WireModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = Field(None, description="A reasoning model's thinking (DeepSeek's name).")
    reasoning: str | None = Field(None, description="The same thinking, under the name other servers use.")

    @model_serializer(mode="wrap")
    def _drop_absent_fields(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("tool_calls", "reasoning_content", "reasoning"):
            if getattr(self, name) is None:
                data.pop(name, None)
        return data


class ChatChoice(WireModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReasonOut
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(WireModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class FunctionCallDelta(WireModel):
    name: str | None = None
    arguments: str | None = None

    @model_serializer(mode="plain")
    def _drop_unset(self) -> dict[str, Any]:
        return {k: v for k, v in (("name", self.name), ("arguments", self.arguments)) if v is not None}


class _DeltaModel(WireModel):
    """A stream delta: OpenAI sends only the keys a delta carries; clients merge deltas key by key."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class ToolCallDelta(_DeltaModel):
    """A piece of a streamed tool call; clients join the pieces by `index`."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class ChatDelta(_DeltaModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(WireModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReasonOut | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(WireModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
