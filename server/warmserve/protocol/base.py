"""What every request and response shares: text, token ids, sampling fields, usage, errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from warmserve.protocol.sampling import SamplingControls
from warmserve.protocol.speculative import SpeculativeField

# Beyond any context a model has; larger values are typos or attacks, not requests.
MAX_TOKENS_LIMIT = 10_000_000

# Parameters whose value here means "OpenAI's default behaviour", which we do honour.
# (Chat requests have real `tools` / `response_format` fields; these entries matter for
# completions, where OpenAI has no such parameters. The last three are the Responses API's:
# no background run, no truncation, nothing extra included.)
NEUTRAL_VALUES: dict[str, Any] = {
    "tools": [],
    "response_format": {"type": "text"},
    "background": False,
    "truncation": "disabled",
    "include": [],
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


class EchoedIn(WireModel):
    """A part of a request that clients copy from an earlier response (a content block, an output item).

    Fields we don't know are allowed only when null: the SDKs' models carry fields such as
    `citations: null` or `namespace: null`, and a client sends a response's parts back as they are.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    @model_validator(mode="after")
    def _unknown_fields_are_null(self) -> EchoedIn:
        for name, value in (self.model_extra or {}).items():
            if value is not None:
                raise ValueError(f"the field '{name}' is not supported here")
        return self


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


class SamplingFields(SamplingControls):
    """Parameters shared by chat and completions requests (with the extensions of `sampling`).

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
    speculative: SpeculativeField | None = Field(
        None,
        description="Prompt-lookup speculative decoding (llama.cpp models): true, false, or {type, draft_tokens, "
        "ngram_min, ngram_max}; unset = the model's default. Changes the speed, never the text.",
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

    def unsupported_sent(self) -> list[str]:
        return unsupported_sent(self)


def unsupported_sent(body: BaseModel) -> list[str]:
    """Fields the client sent that this server would otherwise silently ignore (a neutral value is no request)."""
    extra = body.model_extra or {}
    return [
        name
        for name, value in extra.items()
        if value is not None and not (name in NEUTRAL_VALUES and NEUTRAL_VALUES[name] == value)
    ]


class PromptTokensDetails(WireModel):
    cached_tokens: int = Field(0, description="Prompt tokens whose KV cache was reused, not recomputed.")


class CompletionTokensDetails(WireModel):
    reasoning_tokens: int = Field(0, description="Completion tokens a reasoning model spent thinking.")


class Usage(WireModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(default_factory=CompletionTokensDetails)


FinishReasonOut = Literal["stop", "length", "tool_calls"]


class ErrorDetail(WireModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(WireModel):
    error: ErrorDetail
