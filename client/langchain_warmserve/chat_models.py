"""ChatWarmServe: a LangChain chat model answered by a warmserve server's /v1/chat/completions.

warmserve speaks the OpenAI chat completions protocol, so this is a thin subclass of
langchain-openai's `BaseChatOpenAI` (as langchain-deepseek and langchain-xai are): request
building, SSE streaming, retries, timeouts, usage metadata and tool-call parsing are that
package's, and so is the choice of API: chat completions by default, the server's Responses
API with `use_responses_api=True` (or whatever langchain-openai routes there by itself, such as
`use_previous_response_id`). What is warmserve's own lives here: where the server is (not
`OPENAI_*`), usage in streams on by default, errors typed from the server's status and code,
token counts from the server's tokenizer, and a reasoning model's thinking, which ChatOpenAI
drops, in `additional_kwargs["reasoning_content"]`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import ConfigDict, Field, SecretStr, model_validator
from typing_extensions import Self

from langchain_warmserve._client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    VERSION,
    build_clients,
    count_tokens,
    model_capabilities,
    profile_of,
)
from langchain_warmserve.errors import translated_errors
from langchain_warmserve.sampling import SamplingExtensions

__all__ = ["ChatWarmServe"]


class ChatWarmServe(SamplingExtensions, BaseChatOpenAI):
    """Chat model served by warmserve.

    Setup:
        Start a server (`warmserve serve`, by default on http://127.0.0.1:8000/v1 with
        SmolLM2-135M-Instruct) and `pip install langchain-warmserve`. The server is found
        through `base_url`, else `WARMSERVE_BASE_URL`, else http://127.0.0.1:8000/v1; an
        API key, if the server wants one, through `api_key`, else `WARMSERVE_API_KEY`.

    Key init args:
        model: served model name, as `GET /v1/models` lists it (default `smollm2-135m-instruct`).
        temperature, max_tokens, top_p, stop, seed, presence_penalty, frequency_penalty:
            sampling, sent to the server as the OpenAI parameters of the same names.
        top_k, min_p, typical_p, repetition_penalty, repeat_last_n, and for llama.cpp models
            dry_*, xtc_*, mirostat*: warmserve's sampling extensions, sent in the request body
            when set (`langchain_warmserve.sampling`); unset, the model's defaults apply.
        timeout, max_retries: per request (retries cover 429, 5xx and dropped connections).
        model_kwargs / extra_body: further request parameters.
        stream_usage: usage in streamed answers (default True).
        use_responses_api: send requests to the server's `/v1/responses` instead of chat
            completions (same model, same answers); `use_previous_response_id=True` then sends
            only the new turn, continuing the conversation the server stored.

    Instantiate:
        ```python
        from langchain_warmserve import ChatWarmServe

        model = ChatWarmServe(temperature=0, max_tokens=128)
        ```

    Invoke, batch, stream (and `ainvoke`, `abatch`, `astream`):
        ```python
        model.invoke([("system", "You are a florist."), ("human", "Which flower is a rose?")])
        model.batch(["Hello", "Bonjour"])
        for chunk in model.stream("Tell me about roses."):
            print(chunk.text, end="")
        ```

    Usage and response metadata:
        `AIMessage.usage_metadata` has input, output and total tokens (on the last chunk of a
        stream); `response_metadata` has `model_name` and `finish_reason`.

    Token counting:
        `get_num_tokens` and `get_num_tokens_from_messages` ask the server's tokenizer
        (`POST /v1/tokenize`); a server without that endpoint raises
        `TokenizationUnsupportedError`. No OpenAI tokenizer is guessed at.

    Capabilities:
        `server_capabilities()` reads what the model can do from `GET /v1/models/{model}` (tools,
        json_schema, embeddings, logprobs, context length, backend); `load_profile()` turns that
        into LangChain's `profile` so tools and structured output can configure themselves.

    Errors:
        See `langchain_warmserve.errors`: e.g. an unknown model raises `ModelNotFoundError`,
        a prompt over the context `ContextOverflowError`, both with the server's message.

    Tool calling, structured output and JSON mode:
        `bind_tools` and `with_structured_output` are langchain-openai's; the server enforces
        `tool_choice` ("required", a named function) and `response_format` (json_schema,
        json_object) by constrained decoding, so calls and structured answers always parse.

    Reasoning models:
        `reasoning_effort` ("none" to "high") sets how much a reasoning model thinks; its thinking
        comes back apart from the answer, in `AIMessage.additional_kwargs["reasoning_content"]`
        (streamed chunk by chunk, before the answer's). A model that cannot think answers a
        `reasoning_effort` other than "none" with a 400. `extra_body={"chat_template_kwargs":
        {...}}` passes variables to the model's chat template.

    Not supported by the server yet: image inputs.
    """

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Served model name."""
    openai_api_key: SecretStr | None = Field(
        alias="api_key", default_factory=secret_from_env(API_KEY_ENV, default=None)
    )
    """API key, for a server that checks them; default `WARMSERVE_API_KEY`."""
    openai_api_base: str = Field(
        alias="base_url", default_factory=from_env(BASE_URL_ENV, default=DEFAULT_BASE_URL)
    )
    """Server URL up to and including /v1; default `WARMSERVE_BASE_URL`, then the local default."""
    openai_proxy: str | None = None
    """Not supported: pass `http_client` / `http_async_client` configured with a proxy."""
    stream_usage: bool | None = True
    """Ask for usage in streams (`stream_options.include_usage`); warmserve always has it."""

    model_config = ConfigDict(populate_by_name=True)

    @property
    def _llm_type(self) -> str:
        return "chat-warmserve"

    @property
    def _default_params(self) -> dict[str, Any]:
        return self._with_extensions(super()._default_params)

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"openai_api_key": API_KEY_ENV}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "warmserve"
        return params

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Replaces langchain-openai's validator, which would read `OPENAI_*` variables."""
        if self.client is None or self.async_client is None:
            sync_client, async_client = build_clients(
                base_url=self.openai_api_base,
                api_key=self.openai_api_key,
                proxy=self.openai_proxy,
                timeout=self.request_timeout,
                max_retries=self.max_retries,
                default_headers=self.default_headers,
                default_query=self.default_query,
                http_client=self.http_client,
                http_async_client=self.http_async_client,
            )
            if self.client is None:
                self.root_client = sync_client
                self.client = sync_client.chat.completions
            if self.async_client is None:
                self.root_async_client = async_client
                self.async_client = async_client.chat.completions
        return self

    @model_validator(mode="after")
    def _set_warmserve_version(self) -> Self:
        self._add_version("langchain-warmserve", VERSION)
        return self

    def _errors(self) -> AbstractContextManager[None]:
        return translated_errors(base_url=self.openai_api_base, api_key_set=self.openai_api_key is not None)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._errors():
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._errors():
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._errors():
            if self._use_responses_api({**kwargs, **self.model_kwargs}):  # as ChatOpenAI routes it
                yield from self._stream_responses(messages, stop=stop, run_manager=run_manager, **kwargs)
            else:
                yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        with self._errors():
            if self._use_responses_api({**kwargs, **self.model_kwargs}):
                chunks = self._astream_responses(messages, stop=stop, run_manager=run_manager, **kwargs)
            else:
                chunks = super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs)
            async for chunk in chunks:
                yield chunk

    def _create_chat_result(
        self, response: dict[str, Any] | openai.BaseModel, generation_info: dict[str, Any] | None = None
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        data = response if isinstance(response, dict) else response.model_dump()
        for generation, choice in zip(result.generations, data.get("choices") or (), strict=False):
            thinking = (choice.get("message") or {}).get("reasoning_content")
            if thinking is not None:
                generation.message.additional_kwargs["reasoning_content"] = thinking
        return result

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        choices = chunk.get("choices") or ()
        if generation is not None and choices:
            thinking = (choices[0].get("delta") or {}).get("reasoning_content")
            if thinking and isinstance(generation.message, AIMessageChunk):
                generation.message.additional_kwargs["reasoning_content"] = thinking
        return generation

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids would need the model's tokenizer here; the server reports counts only."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            "ChatWarmServe cannot list token ids: the server's tokenizer reports counts. "
            "Use get_num_tokens(), or pass custom_get_token_ids=..."
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens in `text` by the served model's tokenizer, as the server counts a prompt."""
        return self._count_tokens({"prompt": text})

    def get_num_tokens_from_messages(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
        *,
        allow_fetching_images: bool = True,
    ) -> int:
        """Prompt tokens of these messages after the model's chat template, counted by the server."""
        if tools:
            warnings.warn(
                "warmserve's tokenize endpoint does not count tools, so they are not counted.", stacklevel=2
            )
        wire_messages = self._get_request_payload(list(messages))["messages"]
        return self._count_tokens({"messages": wire_messages})

    def server_capabilities(self) -> dict[str, Any]:
        """What the server says this model can do: `GET /v1/models/{model}`'s capabilities, with
        `backend` and `context_length`."""
        return model_capabilities(
            self.root_client,
            model=self.model_name,
            base_url=self.openai_api_base,
            api_key_set=self.openai_api_key is not None,
        )

    def load_profile(self) -> ModelProfile:
        """Set `profile` (tool calling, structured output, max input tokens) from the server and return it."""
        self.profile = profile_of(self.server_capabilities())
        return self.profile

    def _count_tokens(self, payload: dict[str, Any]) -> int:
        return count_tokens(
            self.root_client,
            model=self.model_name,
            payload=payload,
            base_url=self.openai_api_base,
            api_key_set=self.openai_api_key is not None,
        )
