"""POST /v1/responses and its stored-response routes: OpenAI's Responses API, its items and events.

Text and function calls; no built-in tools, images, files, background runs or conversations.
Input items the official `openai` client sends back (a response's `output` as the next
turn's input) carry fields such as `id`, `status` and `annotations`: those are accepted.
Unknown request fields are kept so the route can name them by the `unsupported_parameters`
policy, as in every request here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from warmserve.generation import Effort
from warmserve.protocol.base import MAX_TOKENS_LIMIT, EchoedIn, Text, WireModel, unsupported_sent
from warmserve.protocol.chat import FunctionDefinition, FunctionName
from warmserve.protocol.sampling import SamplingControls


class _Unsupported(BaseModel):
    """A part, item or tool of a type this server does not do: its validation fails naming the type."""

    model_config = ConfigDict(extra="allow")
    type: Any = None
    what: ClassVar[str]

    @model_validator(mode="after")
    def _refuse(self) -> _Unsupported:
        raise ValueError(f"{self.what} of type {self.type!r} are not supported by this server")


class _UnsupportedPart(_Unsupported):
    what = "content parts"


class _UnsupportedItem(_Unsupported):
    what = "input items"


class _UnsupportedTool(_Unsupported):
    what = "tools"


def _by_type(known: tuple[str, ...], default: str | None = None) -> Callable[[object], str]:
    """A discriminator over `known` types, anything else tagged "other-type"; no tag is an identifier,
    so a 400's `param` leaves them out (`input[0].content[0].text`, not `input[0].message.content[0]...`)."""

    def tag(value: object) -> str:
        kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        return f"type={kind}" if kind in known else "other-type"

    return tag


def _str_or_list(value: object) -> str:
    return "str" if isinstance(value, str) else "list"


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class InputText(EchoedIn):
    type: Literal["input_text"]
    text: Text


class OutputTextIn(EchoedIn):
    """An assistant message's text, sent back as input."""

    type: Literal["output_text"]
    text: Text
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class RefusalIn(EchoedIn):
    type: Literal["refusal"]
    refusal: Text


ContentPartIn = Annotated[
    Annotated[InputText, Tag("type=input_text")]
    | Annotated[OutputTextIn, Tag("type=output_text")]
    | Annotated[RefusalIn, Tag("type=refusal")]
    | Annotated[_UnsupportedPart, Tag("other-type")],
    Discriminator(_by_type(("input_text", "output_text", "refusal"))),
]

Phase = Literal["commentary", "final_answer"]


class MessageItemIn(EchoedIn):
    """A message; `type` may be left out (OpenAI's "easy" input message)."""

    type: Literal["message"] = "message"
    id: Text | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: Annotated[
        Annotated[Text, Tag("str")] | Annotated[list[ContentPartIn], Tag("list")], Discriminator(_str_or_list)
    ]
    status: ItemStatus | None = None
    phase: Phase | None = Field(None, description="An assistant message's phase; kept, no effect on generation.")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(
            part.refusal if isinstance(part, RefusalIn) else part.text
            for part in self.content
            if not isinstance(part, _UnsupportedPart)  # never validates: a 400 before this is read
        )


class _CallFields(EchoedIn):
    """What OpenAI's function call items may carry beyond the call: accepted, no effect here."""

    namespace: Text | None = None
    caller: dict[str, Any] | None = None
    async_: bool | None = Field(None, alias="async")


class FunctionCallIn(_CallFields):
    """A call the model made on an earlier turn."""

    type: Literal["function_call"]
    id: Text | None = None
    call_id: Text = Field(min_length=1)
    name: Text = Field(min_length=1)
    arguments: Text
    status: ItemStatus | None = None


class FunctionCallOutputIn(_CallFields):
    """What the caller's function returned, answering `call_id`."""

    type: Literal["function_call_output"]
    id: Text | None = None
    call_id: Text = Field(min_length=1)
    name: Text | None = None
    output: Annotated[
        Annotated[Text, Tag("str")] | Annotated[list[InputText], Tag("list")], Discriminator(_str_or_list)
    ]
    status: ItemStatus | None = None


class ReasoningTextIn(EchoedIn):
    type: Literal["reasoning_text", "summary_text"]
    text: Text


class ReasoningItemIn(EchoedIn):
    """A reasoning model's thinking on an earlier turn, sent back: kept in the conversation, not in the
    prompt (reasoning models' templates drop past thinking too)."""

    type: Literal["reasoning"]
    id: Text | None = None
    summary: list[ReasoningTextIn] = Field(default_factory=list)
    content: list[ReasoningTextIn] | None = None
    encrypted_content: Text | None = None
    status: ItemStatus | None = None


InputItem = Annotated[
    Annotated[MessageItemIn, Tag("type=message")]
    | Annotated[FunctionCallIn, Tag("type=function_call")]
    | Annotated[FunctionCallOutputIn, Tag("type=function_call_output")]
    | Annotated[ReasoningItemIn, Tag("type=reasoning")]
    | Annotated[_UnsupportedItem, Tag("other-type")],
    Discriminator(_by_type(("message", "function_call", "function_call_output", "reasoning"), default="message")),
]


class FunctionTool(FunctionDefinition):
    """Chat's function definition, flat in the tool as the Responses API has it."""

    type: Literal["function"]


class NamedFunctionChoice(WireModel):
    type: Literal["function"]
    name: Text


ResponseToolIn = Annotated[
    Annotated[FunctionTool, Tag("type=function")] | Annotated[_UnsupportedTool, Tag("other-type")],
    Discriminator(_by_type(("function",))),
]

ResponseToolChoice = Literal["none", "auto", "required"] | NamedFunctionChoice


class TextFormatPlain(WireModel):
    type: Literal["text"]


class TextFormatJsonObject(WireModel):
    type: Literal["json_object"]


class TextFormatJsonSchema(WireModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["json_schema"]
    name: FunctionName
    description: Text | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = Field(None, description="The output always follows the schema here, strict or not.")


ResponseTextFormat = Annotated[
    Annotated[TextFormatPlain, Tag("type=text")]
    | Annotated[TextFormatJsonObject, Tag("type=json_object")]
    | Annotated[TextFormatJsonSchema, Tag("type=json_schema")],
    Discriminator(_by_type(("text", "json_object", "json_schema"))),
]


class TextConfig(WireModel):
    format: ResponseTextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = Field(None, description="Accepted; no effect here.")


class ResponsesInput(BaseModel):
    """What both POST /v1/responses and /v1/responses/input_tokens read: the model's whole prompt."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: Text = Field(min_length=1, description="Served model name, as /v1/models lists it.")
    input: Annotated[
        Annotated[Text, Tag("str")] | Annotated[list[InputItem], Field(min_length=1), Tag("list")],
        Discriminator(_str_or_list),
    ] = Field(description="A user message's text, or a list of input items.")
    instructions: Text | None = Field(None, description="A system message first; not carried to the next turn.")
    previous_response_id: Text | None = Field(
        None, description="Continue that stored response: its input and output come before this input."
    )
    tools: list[ResponseToolIn] | None = Field(
        None, max_length=128, description="Function tools; built-in tool types are not supported here."
    )
    tool_choice: ResponseToolChoice | None = Field(None, description="Default: auto with tools.")
    parallel_tool_calls: bool | None = Field(None, description="Default true: one or more calls per turn.")
    text: TextConfig | None = None

    def unsupported_sent(self) -> list[str]:
        return unsupported_sent(self)


class ReasoningConfig(WireModel):
    effort: Effort | None = Field(
        None, description="A reasoning model's thinking budget per level (see chat's reasoning_effort)."
    )
    summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="Accepted; the thinking comes back whole, as the reasoning item's content, not summarised."
    )
    generate_summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="The old name of summary."
    )


class ResponsesRequest(ResponsesInput, SamplingControls):
    reasoning: ReasoningConfig | None = None
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stream: bool = False
    store: bool = Field(True, description="Keep the response for previous_response_id and GET (default true).")
    metadata: dict[Text, Text] | None = Field(None, max_length=16)
    user: Text | None = None
    service_tier: Text | None = None
    prompt_cache_key: Text | None = None
    safety_identifier: Text | None = None


class InputTokensRequest(ResponsesInput):
    pass


class InputTokensResponse(WireModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int


# The response and its output items.


class OutputText(WireModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(WireModel):
    type: Literal["message"] = "message"
    id: str
    status: ItemStatus
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCallOut(WireModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


class ReasoningText(WireModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class ReasoningItem(WireModel):
    """A reasoning model's thinking, before the message it led to."""

    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningText]
    status: ItemStatus


OutputItem = Annotated[OutputMessage | FunctionCallOut | ReasoningItem, Field(discriminator="type")]

ResponseStatus = Literal["in_progress", "completed", "incomplete", "failed"]


class InputTokensDetails(WireModel):
    cached_tokens: int = Field(0, description="Prompt tokens whose KV cache was reused, not recomputed.")
    cache_write_tokens: int = Field(0, description="Prompt caching here is automatic and costs nothing extra.")


class OutputTokensDetails(WireModel):
    reasoning_tokens: int = 0


class ResponseUsage(WireModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(WireModel):
    reason: Literal["max_output_tokens"]


class ResponseError(WireModel):
    code: str
    message: str


class ResponseObject(WireModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: ReasoningConfig | None = None
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class DeletedResponse(WireModel):
    id: str
    object: Literal["response"] = "response"
    deleted: Literal[True] = True


class InputItemList(WireModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool
