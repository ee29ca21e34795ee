"""POST /v1/embeddings: inputs as text or token ids, float or base64 vectors, usage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from warmserve.protocol.base import Text, TokenIds, WireModel

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

    def unsupported_sent(self) -> list[str]:
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
