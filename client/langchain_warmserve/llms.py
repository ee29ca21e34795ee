"""WarmServeLLM: a LangChain text-completion LLM answered by a warmserve server's /v1/completions.

A thin subclass of langchain-openai's `BaseOpenAI` for the same reasons `ChatWarmServe`
subclasses `BaseChatOpenAI`: the request, batching (several prompts in one request), SSE
streaming, retries and timeouts are that package's; where the server is, errors and token
counting are warmserve's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.outputs import GenerationChunk, LLMResult
from langchain_core.utils import from_env, secret_from_env
from langchain_openai.llms.base import BaseOpenAI
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
)
from langchain_warmserve.errors import translated_errors
from langchain_warmserve.sampling import SamplingExtensions

__all__ = ["WarmServeLLM"]


class WarmServeLLM(SamplingExtensions, BaseOpenAI):
    """Text-completion LLM served by warmserve: a prompt in, its continuation out.

    Setup, the server's address (`base_url`, `WARMSERVE_BASE_URL`) and API key (`api_key`,
    `WARMSERVE_API_KEY`) work as for `ChatWarmServe`.

    Key init args:
        model: served model name (default `smollm2-135m-instruct`).
        temperature (default 0.7), max_tokens (default 256), top_p, stop, seed,
        presence_penalty, frequency_penalty: sent as the OpenAI parameters of those names.
        top_k, min_p, typical_p, repetition_penalty, ...: the sampling extensions, as for
            `ChatWarmServe`.
        timeout, max_retries, model_kwargs / extra_body: as for `ChatWarmServe`.

    Use:
        ```python
        from langchain_core.prompts import PromptTemplate
        from langchain_warmserve import WarmServeLLM

        llm = WarmServeLLM(max_tokens=64, temperature=0)
        chain = PromptTemplate.from_template("Q: {question}\\nA:") | llm
        chain.invoke({"question": "Rose is which type of flower?"})
        llm.batch(["Roses are", "Violets are"])  # one request with both prompts
        for text in llm.stream("Once upon a time"):
            print(text, end="")
        ```

    `get_num_tokens` asks the server's tokenizer (`POST /v1/tokenize`); errors are typed as
    described in `langchain_warmserve.errors`.
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
    max_tokens: int = Field(default=256, ge=1)
    """Most tokens to generate. (OpenAI's -1, "fill the context", needs a context size the
    server does not publish.)"""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences; a `stop=` given to a call replaces them."""
    root_client: Any = Field(default=None, exclude=True)
    root_async_client: Any = Field(default=None, exclude=True)

    model_config = ConfigDict(populate_by_name=True)

    @property
    def _llm_type(self) -> str:
        return "warmserve"

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"openai_api_key": API_KEY_ENV}

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
                self.client = sync_client.completions
            if self.async_client is None:
                self.root_async_client = async_client
                self.async_client = async_client.completions
        return self

    @model_validator(mode="after")
    def _set_warmserve_version(self) -> Self:
        self._add_version("langchain-warmserve", VERSION)
        return self

    @property
    def _default_params(self) -> dict[str, Any]:
        """langchain-openai's parameters less unset ones and `n=1`: the server names anything else."""
        params = {k: v for k, v in super()._default_params.items() if v is not None}
        if params.get("n") == 1:
            del params["n"]
        if self.stop:
            params["stop"] = self.stop
        return self._with_extensions(params)

    @property
    def _invocation_params(self) -> dict[str, Any]:
        return {"model": self.model_name, **super()._invocation_params}

    def _errors(self) -> AbstractContextManager[None]:
        return translated_errors(base_url=self.openai_api_base, api_key_set=self.openai_api_key is not None)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        with self._errors():
            return super()._generate(prompts, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        with self._errors():
            return await super()._agenerate(prompts, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        with self._errors():
            yield from super()._stream(prompt, stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        with self._errors():
            async for chunk in super()._astream(prompt, stop=stop, run_manager=run_manager, **kwargs):
                yield chunk

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids would need the model's tokenizer here; the server reports counts only."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            "WarmServeLLM cannot list token ids: the server's tokenizer reports counts. "
            "Use get_num_tokens(), or pass custom_get_token_ids=..."
        )

    def server_capabilities(self) -> dict[str, Any]:
        """What the server says this model can do: `GET /v1/models/{model}`'s capabilities, with
        `backend` and `context_length`."""
        return model_capabilities(
            self.root_client,
            model=self.model_name,
            base_url=self.openai_api_base,
            api_key_set=self.openai_api_key is not None,
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens in `text` by the served model's tokenizer, as the server counts a prompt."""
        return count_tokens(
            self.root_client,
            model=self.model_name,
            payload={"prompt": text},
            base_url=self.openai_api_base,
            api_key_set=self.openai_api_key is not None,
        )
