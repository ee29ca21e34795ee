"""Errors reach LangChain code typed and with the server's message: the real server, then stubs
for answers the shared session server should not be driven to (a server started with API keys,
one at capacity, a worker dying before or during a stream). The stubs send the real server's
error bodies, built from its own error classes."""

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
)
from warmserve.api.errors import error_body
from warmserve.errors import Overloaded, Unauthorized, WarmServeError, WorkerDied

from langchain_warmserve import ChatWarmServe, WarmServeLLM, WarmServeStreamError
from tests.integration_tests.conftest import free_port
from tests.standard_properties import MODEL
from tests.stub_server import Reply

UNKNOWN = "The model 'gpt-4o' does not exist. Models served here: smollm2-135m-instruct, smollm2-second-name."


def error(failure: WarmServeError) -> Reply:
    """What warmserve answers for `failure`, but with Retry-After 0 so retries do not wait."""
    headers = {name: "0" for name in failure.headers()}
    return Reply(failure.status_code, error_body(failure), headers)


def test_an_unknown_model_is_model_not_found_with_the_servers_message():
    chat = ChatWarmServe(model="gpt-4o", max_retries=0)
    with pytest.raises(ModelNotFoundError) as info:
        chat.invoke("Hi")
    assert str(info.value) == f"{UNKNOWN} (HTTP 404, model_not_found)"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        list(chat.stream("Hi"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        WarmServeLLM(model="gpt-4o", max_retries=0).invoke("Hi")


async def test_an_unknown_model_is_model_not_found_in_async_streams_too():
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        [c async for c in WarmServeLLM(model="gpt-4o", max_retries=0).astream("Hi")]


def test_a_prompt_over_the_context_is_context_overflow_with_the_numbers():
    with pytest.raises(ContextOverflowError, match=r"maximum context length is 2048 tokens.*\(HTTP 400"):
        ChatWarmServe(max_tokens=4000, max_retries=0).invoke("Hi")
    with pytest.raises(ContextOverflowError, match="maximum context length is 2048 tokens"):
        WarmServeLLM(max_tokens=4000, max_retries=0).invoke("Hi")


def test_a_parameter_the_server_lacks_is_an_invalid_request_naming_it():
    with pytest.raises(ModelInvalidRequestError, match=r"'modalities' is not supported.*unsupported_param"):
        ChatWarmServe(model_kwargs={"modalities": ["audio"]}, max_retries=0).invoke("Hi")


def test_a_tool_choice_without_tools_is_refused_naming_it():
    bound = ChatWarmServe(max_retries=0).bind(tool_choice="required")
    with pytest.raises(
        ModelInvalidRequestError, match="'tool_choice' is only allowed when 'tools' are specified"
    ):
        bound.invoke("Which colour?")


def test_an_auth_error_carries_the_servers_message_and_sends_the_key(stub):
    refused = error(Unauthorized("Invalid API key."))
    for path in ("/v1/chat/completions", "/v1/completions"):
        stub.reply("POST", path, refused)
    with pytest.raises(ModelAuthenticationError) as info:
        ChatWarmServe(base_url=stub.base_url, api_key="wrong", max_retries=0).invoke("Hi")
    assert str(info.value) == "Invalid API key. (HTTP 401, invalid_api_key)"
    assert stub.requests[-1].headers["authorization"] == "Bearer wrong"
    with pytest.raises(ModelAuthenticationError, match=r"No API key is configured.*WARMSERVE_API_KEY"):
        WarmServeLLM(base_url=stub.base_url, max_retries=0).invoke("Hi")


def test_overloaded_is_a_rate_limit_error_after_the_retries(stub):
    overloaded = error(Overloaded("The server is overloaded; retry later."))
    for path in ("/v1/chat/completions", "/v1/completions"):
        stub.reply("POST", path, overloaded)
    with pytest.raises(ModelRateLimitError, match=r"overloaded; retry later\. \(HTTP 429, overloaded\)"):
        ChatWarmServe(base_url=stub.base_url, max_retries=1).invoke("Hi")
    with pytest.raises(ModelRateLimitError, match="overloaded"):
        WarmServeLLM(base_url=stub.base_url, max_retries=0).invoke("Hi")
    assert len(stub.requests) == 3  # the chat model tried twice


def test_overloaded_is_retried_after_retry_after(stub):
    stub.reply("POST", "/v1/completions", error(Overloaded("The server is overloaded; retry later.")))
    ok = {"id": "t", "object": "text_completion", "created": 1, "model": MODEL,
          "choices": [{"index": 0, "text": " fine", "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
    stub.reply("POST", "/v1/completions", Reply(200, ok))
    assert WarmServeLLM(base_url=stub.base_url, max_retries=1).invoke("Hi") == " fine"
    assert len(stub.requests) == 2


def test_a_dead_worker_is_a_model_api_error(stub):
    died = error(WorkerDied("The worker serving this request stopped."))
    stub.reply("POST", "/v1/chat/completions", died)
    with pytest.raises(
        ModelAPIError, match=r"worker serving this request stopped\. \(HTTP 503, worker_died\)"
    ):
        ChatWarmServe(base_url=stub.base_url, max_retries=0).invoke("Hi")


def test_an_error_event_mid_stream_is_raised_with_the_servers_message(stub):
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}  # fmt: skip
    died = error_body(WorkerDied("The worker stopped."))
    stub.reply("POST", "/v1/chat/completions", Reply(sse=(chunk, died)))
    received = []

    def read_all() -> None:
        for piece in ChatWarmServe(base_url=stub.base_url, max_retries=0).stream("Hi"):
            received.append(piece.content)

    with pytest.raises(WarmServeStreamError, match=r"The worker stopped\. \(worker_died\)") as info:
        read_all()
    assert "Hel" in received
    assert isinstance(info.value, ModelAPIError)


def test_no_server_at_the_address_is_a_connection_error_naming_it():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelConnectionError, match=f"Cannot reach the warmserve server at {url}"):
        ChatWarmServe(base_url=url, max_retries=0).invoke("Hi")
