"""What both model classes share: where the server is, its HTTP clients, token counting.

The server is found through `WARMSERVE_BASE_URL` / `WARMSERVE_API_KEY`, never through
`OPENAI_*` variables: a user's OpenAI key must not be sent to a local server by accident.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import openai
from langchain_core.language_models.model_profile import ModelProfile
from pydantic import SecretStr

from langchain_warmserve.errors import (
    TokenizationUnsupportedError,
    server_code,
    translated_errors,
)

try:
    VERSION = metadata.version("langchain-warmserve")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    VERSION = "0+unknown"

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_MODEL = "smollm2-135m-instruct"
BASE_URL_ENV = "WARMSERVE_BASE_URL"
API_KEY_ENV = "WARMSERVE_API_KEY"
# The openai SDK refuses to send a request without some key; a server without keys ignores it.
NO_API_KEY = "EMPTY"


def build_clients(
    *,
    base_url: str,
    api_key: SecretStr | None,
    proxy: str | None,
    timeout: Any,
    max_retries: int | None,
    default_headers: Any,
    default_query: Any,
    http_client: Any,
    http_async_client: Any,
) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    """The sync and async `openai` clients for one server; unset options keep the SDK's defaults."""
    if proxy:
        raise ValueError(
            "openai_proxy is not supported; pass http_client=httpx.Client(proxy=...) and "
            "http_async_client=httpx.AsyncClient(proxy=...) instead."
        )
    params: dict[str, Any] = {
        "api_key": api_key.get_secret_value() if api_key is not None else NO_API_KEY,
        "base_url": base_url,
        "default_headers": default_headers,
        "default_query": default_query,
    }
    if timeout is not None:
        params["timeout"] = timeout
    if max_retries is not None:
        params["max_retries"] = max_retries
    return (
        openai.OpenAI(**params, http_client=http_client),
        openai.AsyncOpenAI(**params, http_client=http_async_client),
    )


def count_tokens(
    client: openai.OpenAI, *, model: str, payload: dict[str, Any], base_url: str, api_key_set: bool
) -> int:
    """Ask the server's own tokenizer: `POST {base_url}/tokenize` answers `{"model", "count"}`.

    A generic tokenizer (tiktoken, GPT-2) would count a different vocabulary than the
    served model, so a server without the endpoint is an error, not a fallback.
    """
    url = f"{base_url.rstrip('/')}/tokenize"
    try:
        with translated_errors(base_url=base_url, api_key_set=api_key_set):
            answer = client.post("/tokenize", cast_to=object, body={"model": model, **payload})
    except openai.NotFoundError as error:
        if server_code(error) == "model_not_found":
            raise
        raise TokenizationUnsupportedError(
            f"The warmserve server at {base_url} does not offer tokenization (POST {url} answered 404), "
            "so it cannot count tokens for its model. Upgrade the server to a version with /v1/tokenize."
        ) from error
    count = answer.get("count") if isinstance(answer, dict) else None
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError(f"Unexpected answer from POST {url}: {answer!r}")
    return count


def model_capabilities(
    client: openai.OpenAI, *, model: str, base_url: str, api_key_set: bool
) -> dict[str, Any]:
    """What the server says the model can do (`GET {base_url}/models/{model}`): its capabilities
    (chat, completions, embeddings, tools, json_schema, logprobs, ...), plus `backend` and
    `context_length`, so a program can configure itself instead of guessing."""
    with translated_errors(base_url=base_url, api_key_set=api_key_set):
        card = client.models.retrieve(model).model_dump()
    capabilities = card.get("capabilities")
    if not isinstance(capabilities, dict):
        raise ValueError(
            f"The server at {base_url} lists no capabilities for '{model}'; upgrade it to a warmserve "
            "version whose /v1/models reports them."
        )
    return {**capabilities, "backend": card.get("backend"), "context_length": card.get("context_length")}


def profile_of(capabilities: dict[str, Any]) -> ModelProfile:
    """LangChain's model profile from the server's capabilities: text in and out only."""
    profile: ModelProfile = {
        "text_inputs": True,
        "text_outputs": True,
        "image_inputs": False,
        "image_url_inputs": False,
        "pdf_inputs": False,
        "audio_inputs": False,
        "video_inputs": False,
        "tool_calling": bool(capabilities.get("tools")),
        "tool_choice": bool(capabilities.get("tools")),
        "structured_output": bool(capabilities.get("json_schema")),
    }
    if isinstance(capabilities.get("context_length"), int):
        profile["max_input_tokens"] = capabilities["context_length"]
    return profile
