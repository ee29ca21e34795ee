"""The OpenAI wire format: requests, responses, stream chunks and the error body.

This module is the only place the schema is written down. Requests keep unknown
fields (`extra="allow"`) so the API layer can name them in a 400 instead of
dropping them silently; `unsupported_parameters()` lists them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

# Beyond any context a model has; larger values are typos or attacks, not requests.
MAX_TOKENS_LIMIT = 10_000_000

# Parameters whose value here means "OpenAI's default behaviour", which we do honour.
# (Chat requests have real `tools` / `response_format` fields; these entries matter for
# completions, where OpenAI has no such parameters.)
NEUTRAL_VALUES: dict[str, Any] = {
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


def _token_bias(bias: dict[str, float]) -> dict[str, float]:
    for key in bias:
        if not key.isdigit():
            raise ValueError(f"logit_bias keys are token ids (strings of digits); got {key!r}")
    return bias


LogitBias = Annotated[
    dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]], Field(max_length=1024), AfterValidator(_token_bias)
]

TokenId = Annotated[int, Field(ge=0, le=2**31 - 1, strict=True)]
TokenIds = Annotated[list[TokenId], Field(min_length=1)]

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
    logit_bias: LogitBias | None = Field(
        None, description="Token id (as a string) -> bias from -100 to 100 added to its logit before sampling."
    )
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

    def token_bias(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(token), bias) for token, bias in (self.logit_bias or {}).items())

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
    logprobs: bool | None = Field(None, description="Return the log probability of each output token.")
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="With logprobs: also the most likely alternatives at each position."
    )
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = Field(None, description="Default: auto with tools, none without.")
    parallel_tool_calls: bool | None = Field(None, description="Default true: one or more calls per turn.")

    def output_limit(self) -> int | None:
        """`max_completion_tokens` is the current name; `max_tokens` the deprecated one."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=64)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=64)]
    ) = Field(description="One prompt, or a list (at most 64) answered as one choice each; text or token ids.")
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKENS_LIMIT, description="OpenAI's default for completions is 16.")
    logprobs: int | None = Field(
        None, ge=0, le=5, description="Log probabilities of each output token and of this many alternatives."
    )
    echo: bool = Field(False, description="Return the prompt before the completion.")
    best_of: int | None = Field(
        None, ge=1, le=16, description="Candidates per prompt; the n with the highest logprob per token are returned."
    )

    def candidates(self) -> int:
        """Generations per prompt: `best_of` when set, else `n`."""
        return self.best_of if self.best_of is not None else self.n

    suffix: Text | None = Field(
        None, description="Text after the completion: the model fills in the middle (needs a model with FIM tokens)."
    )

    def prompts(self) -> list[str | list[int]]:
        """Each prompt as text or as token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(item, int) for item in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


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


class CompletionLogprobs(WireModel):
    """Completions (the legacy shape): parallel lists, and each token's offset in the choice's text."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


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
    logprobs: ChoiceLogprobs | None = None


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
    logprobs: CompletionLogprobs | None = None


class Completion(WireModel):
    """Both the whole completion and, with `usage=None` until the end, a stream chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCapabilities(WireModel):
    """What a client may ask of the model here; anything else is a 400 naming the parameter."""

    chat: bool = Field(description="POST /v1/chat/completions")
    completions: bool = Field(description="POST /v1/completions")
    embeddings: bool = Field(description="POST /v1/embeddings")
    tools: bool = Field(description="tools and tool_choice in chat")
    json_schema: bool = Field(description="response_format json_object and json_schema")
    logprobs: bool = Field(description="logprobs and top_logprobs")
    logit_bias: bool
    echo: bool = Field(description="completions: echo")
    suffix: bool | None = Field(description="completions: suffix (fill in the middle); null until a worker has loaded")


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "warmserve"
    backend: str = Field(description="The engine: llama_cpp, transformers or fake.")
    context_length: int | None = Field(
        description="Tokens per request (prompt + output) as the loaded engine reports; null until loaded."
    )
    capabilities: ModelCapabilities
    state: Literal["unloaded", "loading", "ready", "degraded", "unhealthy", "draining", "stopping"] = Field(
        description="ready: every worker holds the model; degraded: some do; unhealthy: loads keep failing; "
        "unloaded: no workers now (a lazy model loads on its first request); draining: being unloaded."
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


class DetokenizeRequest(WireModel):
    model: str = Field(min_length=1)
    tokens: list[TokenId] = Field(max_length=1_000_000)


class DetokenizeResponse(WireModel):
    model: str
    text: str


class ErrorDetail(WireModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(WireModel):
    error: ErrorDetail


# --- embeddings -------------------------------------------------------------------------

# OpenAI's own limit on the inputs of one embeddings request.
MAX_EMBEDDING_INPUTS = 2048


def _input_problem(value: Any) -> str:
    shapes = "a string, a list of strings, a list of token ids, or a list of lists of token ids"
    if value == "" or value == []:
        return "it is empty; send at least one non-empty text or token"
    if isinstance(value, str):
        return "it must be valid Unicode (it holds a lone surrogate)"
    if not isinstance(value, list):
        return f"it must be {shapes}"
    if len(value) > MAX_EMBEDDING_INPUTS:
        return f"at most {MAX_EMBEDDING_INPUTS} inputs are allowed in one request, not {len(value)}"
    kinds = {type(item) for item in value}
    if len(kinds) > 1:
        return f"it mixes {' and '.join(sorted(k.__name__ for k in kinds))} items; it must be {shapes}"
    for index, item in enumerate(value):
        if item == "" or item == []:
            return f"input {index} is empty"
        if isinstance(item, list):
            item = next((token for token in item if not isinstance(token, int) or not 0 <= token < 2**31), item)
        if isinstance(item, bool) or not isinstance(item, str | int | list) or (isinstance(item, int) and item < 0):
            return f"input {index} holds {item!r}, which is not a text or a token id (an integer from 0)"
    return f"it must be {shapes}, with valid Unicode text and token ids from 0 to {2**31 - 1}"


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings. Unknown fields are kept only so the API can name them in its 400."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(min_length=1, description="Served model name, as /v1/models lists it.")
    input: (
        Annotated[Text, Field(min_length=1)]
        | Annotated[list[Annotated[Text, Field(min_length=1)]], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    ) = Field(
        description="A text, a list of texts, or token ids (one list, or a list of them), one vector each; "
        "token ids are used as they are, without special tokens added."
    )
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: JSON numbers; base64: the little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Only the model's own size is accepted: truncating vectors of models not trained for it "
        "(Matryoshka) would lose meaning silently.",
    )
    user: str | None = None

    @field_validator("input", mode="wrap")
    @classmethod
    def _clear_input_errors(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """pydantic's errors for a union of four shapes are a puzzle; say what is wrong instead."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(_input_problem(value)) from None

    def inputs(self) -> list[str | list[int]]:
        """One entry per vector asked for: a text, or token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, int) for item in self.input):
            return [[item for item in self.input if isinstance(item, int)]]
        return [item for item in self.input if isinstance(item, str | list)]

    def unsupported_parameters(self) -> list[str]:
        """Fields the client sent that this server would otherwise silently ignore."""
        return [name for name, value in (self.model_extra or {}).items() if value is not None]


class Embedding(WireModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="The vector, or its base64 form (encoding_format=base64).")


class EmbeddingUsage(WireModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(WireModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
