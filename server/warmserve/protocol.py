"""The OpenAI wire format: requests, responses, stream chunks and the error body.

This module is the only place the schema is written down. Requests keep unknown
fields (`extra="allow"`) so the API layer can name them in a 400 instead of
dropping them silently; `unsupported_parameters()` lists them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_serializer, model_validator

# Beyond any context a model has; larger values are typos or attacks, not requests.
MAX_TOKENS_LIMIT = 10_000_000

# Parameters whose value here means "OpenAI's default behaviour", which we do honour.
# (Chat requests have real `tools` / `response_format` fields; these entries matter for
# completions, where OpenAI has no such parameters.)
NEUTRAL_VALUES: dict[str, Any] = {
    "best_of": 1,
    "logprobs": False,
    "echo": False,
    "suffix": "",
    "logit_bias": {},
    "tools": [],
    "response_format": {"type": "text"},
}


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" (JSON allows it, UTF-8 does not)
        raise ValueError("text must be valid Unicode; it contains a lone surrogate") from None
    return text


# Every string a request carries to an engine: valid Unicode that encodes to UTF-8.
Text = Annotated[str, AfterValidator(_encodable)]


class WireModel(BaseModel):
    """Base of every response model: strict field names, no surprises."""

    model_config = ConfigDict(extra="forbid")


# --- requests ---------------------------------------------------------------------------


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
    description: str | None = None
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


class StreamOptions(WireModel):
    include_usage: bool = False


StopParam = (
    Annotated[Text, Field(min_length=1)] | Annotated[list[Annotated[Text, Field(min_length=1)]], Field(max_length=4)]
)


class SamplingFields(BaseModel):
    """Parameters shared by chat and completions requests.

    Unknown fields are kept (`extra="allow"`) only so the API can name them in its 400;
    the published schema says what is accepted (`additionalProperties: false`).
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(min_length=1, description="Served model name, as /v1/models lists it.")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: StopParam | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    n: int = Field(
        1, ge=1, le=16, description="Choices to generate for each prompt; with a seed, choice i uses seed + i."
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    # OpenAI's hints and bookkeeping: accepted, and rightly without effect on generation here.
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def unsupported_parameters(self) -> list[str]:
        """Fields the client sent that this server would otherwise silently ignore."""
        extra = self.model_extra or {}
        return [
            name
            for name, value in extra.items()
            if value is not None and not (name in NEUTRAL_VALUES and NEUTRAL_VALUES[name] == value)
        ]


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = Field(None, description="Default: auto with tools, none without.")
    parallel_tool_calls: bool | None = Field(None, description="Default true: one or more calls per turn.")

    def output_limit(self) -> int | None:
        """`max_completion_tokens` is the current name; `max_tokens` the deprecated one."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=64)] = Field(
        description="One prompt, or a list (at most 64) answered as one choice each."
    )
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKENS_LIMIT, description="OpenAI's default for completions is 16.")

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class TokenizeRequest(WireModel):
    """warmserve's own endpoint: count tokens with the model's tokenizer (and chat template)."""

    model: str = Field(min_length=1)
    prompt: Text | None = None
    messages: list[ChatMessageIn] | None = Field(None, min_length=1)


# --- responses --------------------------------------------------------------------------


class PromptTokensDetails(WireModel):
    cached_tokens: int = Field(0, description="Prompt tokens whose KV cache was reused, not recomputed.")


class Usage(WireModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


FinishReasonOut = Literal["stop", "length", "tool_calls"]


class AssistantMessage(WireModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None

    @model_serializer(mode="wrap")
    def _drop_absent_tool_calls(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.tool_calls is None:
            data.pop("tool_calls", None)
        return data


class ChatChoice(WireModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReasonOut
    logprobs: None = None


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


class ToolCallDelta(WireModel):
    """A piece of a streamed tool call; clients join the pieces by `index`."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class ChatDelta(WireModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: Any) -> dict[str, Any]:
        # OpenAI sends only the keys a delta carries; clients merge deltas key by key.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class ChatChunkChoice(WireModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReasonOut | None = None
    logprobs: None = None


class ChatCompletionChunk(WireModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionChoice(WireModel):
    index: int
    text: str
    finish_reason: FinishReasonOut | None = None
    logprobs: None = None


class Completion(WireModel):
    """Both the whole completion and, with `usage=None` until the end, a stream chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "warmserve"
    state: Literal["loading", "ready", "degraded", "unhealthy", "stopping"] = Field(
        description="ready: every worker holds the model; degraded: some do; unhealthy: loads keep failing."
    )
    ready_workers: int = Field(description="Workers holding the model now.")
    workers: int = Field(description="Workers configured for the model.")


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TokenizeResponse(WireModel):
    model: str
    tokens: list[int]
    count: int


class ErrorDetail(WireModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(WireModel):
    error: ErrorDetail
