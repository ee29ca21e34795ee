"""GET /v1/models with each model's capabilities, and the tokenize / detokenize endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from warmserve.protocol.base import Text, TokenId, WireModel
from warmserve.protocol.chat import ChatMessageIn


class TokenizeRequest(WireModel):
    """warmserve's own endpoint: count tokens with the model's tokenizer (and chat template)."""

    model: str = Field(min_length=1)
    prompt: Text | None = None
    messages: list[ChatMessageIn] | None = Field(None, min_length=1)


# unloaded: no workers (lazy, idle, or unloaded by an admin); draining: being unloaded, requests in
# flight finish and new ones are turned away; failed: its load failed in a way retrying cannot cure
# (a missing file, a format the engine cannot read), so it is not retried. The pools report these;
# /v1/models and /admin show them.
ModelState = Literal["unloaded", "loading", "ready", "degraded", "unhealthy", "failed", "draining", "stopping"]


class ModelCapabilities(WireModel):
    """What a client may ask of the model here; anything else is a 400 naming the parameter."""

    chat: bool = Field(description="POST /v1/chat/completions")
    completions: bool = Field(description="POST /v1/completions")
    embeddings: bool = Field(description="POST /v1/embeddings")
    messages: bool = Field(description="POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API)")
    responses: bool = Field(description="POST /v1/responses (OpenAI's Responses API)")
    tools: bool = Field(description="tools and tool_choice in chat")
    json_schema: bool = Field(description="response_format json_object and json_schema")
    logprobs: bool = Field(description="logprobs and top_logprobs")
    logit_bias: bool
    echo: bool = Field(description="completions: echo")
    suffix: bool | None = Field(description="completions: suffix (fill in the middle); null until a worker has loaded")
    reasoning: bool | None = Field(
        None,
        description="A reasoning model: its thinking comes apart from the answer, and reasoning_effort / "
        "reasoning.effort / thinking control it; null until a worker has loaded",
    )


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "warmserve"
    parent: str | None = Field(
        None, description="A LoRA adapter's base model (whose capabilities it has, embeddings aside); null for a model."
    )
    backend: str = Field(description="The engine: llama_cpp, transformers or fake.")
    context_length: int | None = Field(
        description="Tokens per request (prompt + output) as the loaded engine reports; null until loaded."
    )
    capabilities: ModelCapabilities
    state: ModelState = Field(
        description="ready: every worker holds the model; degraded: some do; unhealthy: loads keep failing and are "
        "retried; failed: the load failed for good (see reason) and is not retried; unloaded: no workers now (a lazy "
        "model loads on its first request); draining: being unloaded."
    )
    reason: str | None = Field(
        None, description="Why the model is failed or unhealthy: the load error, naming the file and the fix."
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
