import json

import httpx
import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from langchain_warmserve import ChatWarmServe
from tests.unit_tests import wire
from tests.unit_tests.conftest import BASE_URL, MODEL, chat_answer, error_answer, sse


def chat(recorder, **kwargs) -> ChatWarmServe:
    return ChatWarmServe(base_url=BASE_URL, max_retries=0, **recorder.clients(), **kwargs)


def test_defaults_are_the_local_server_and_its_default_model():
    model = ChatWarmServe()
    assert model.model_name == MODEL
    assert str(model.root_client.base_url) == "http://127.0.0.1:8000/v1/"
    assert str(model.root_async_client.base_url) == "http://127.0.0.1:8000/v1/"
    assert model.openai_api_key is None
    assert model.stream_usage is True


def test_environment_names_the_server_and_its_key_but_openai_variables_do_not(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-a-real-openai-key")
    monkeypatch.setenv("OPENAI_API_BASE", "https://api.openai.com/v1")
    assert ChatWarmServe().root_client.api_key != "sk-a-real-openai-key"
    assert str(ChatWarmServe().root_client.base_url) == "http://127.0.0.1:8000/v1/"
    monkeypatch.setenv("WARMSERVE_BASE_URL", "http://gpu-box:9000/v1")
    monkeypatch.setenv("WARMSERVE_API_KEY", "local-key")
    model = ChatWarmServe()
    assert str(model.root_client.base_url) == "http://gpu-box:9000/v1/"
    assert model.root_client.api_key == "local-key"
    explicit = ChatWarmServe(base_url="http://other:1/v1", api_key="k2")
    assert (str(explicit.root_client.base_url), explicit.root_client.api_key) == ("http://other:1/v1/", "k2")


def test_openai_proxy_is_not_read_from_the_environment_and_refused_when_given(monkeypatch):
    monkeypatch.setenv("OPENAI_PROXY", "http://proxy.test:3128")
    assert ChatWarmServe().openai_proxy is None
    with pytest.raises(ValueError, match="http_client"):
        ChatWarmServe(openai_proxy="http://proxy.test:3128")


def test_api_key_is_a_secret():
    model = ChatWarmServe(api_key="s3cret")
    assert "s3cret" not in repr(model)
    assert model.lc_secrets == {"openai_api_key": "WARMSERVE_API_KEY"}


def test_timeout_and_retries_reach_the_http_client():
    model = ChatWarmServe(timeout=7.5, max_retries=5)
    assert model.root_client.timeout == 7.5
    assert model.root_client.max_retries == 5
    assert model.root_async_client.max_retries == 5


def test_sampling_parameters_are_sent_and_nothing_the_server_rejects(recorder):
    model = chat(recorder, temperature=0.3, max_tokens=12, top_p=0.9, stop=["\n"], seed=4)
    model.invoke([SystemMessage("Be brief."), HumanMessage("Hi", name="ann"), AIMessage("Hello"), "More?"])
    [body] = recorder.bodies
    assert wire.rejected(body, wire.ChatCompletionRequest) == []
    assert body["temperature"] == 0.3
    assert (body["max_tokens"], body["top_p"], body["stop"], body["seed"]) == (12, 0.9, ["\n"], 4)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][1] == {"role": "user", "content": "Hi", "name": "ann"}


def test_default_requests_plain_and_streamed_carry_only_accepted_parameters(recorder):
    model = chat(recorder)
    model.invoke("Hi")
    list(model.stream("Hi"))
    plain, streamed = recorder.bodies
    assert wire.rejected(plain, wire.ChatCompletionRequest) == []
    assert wire.rejected(streamed, wire.ChatCompletionRequest) == []
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


async def test_async_requests_carry_only_accepted_parameters(recorder):
    model = chat(recorder)
    await model.ainvoke("Hi")
    [chunk async for chunk in model.astream("Hi")]
    assert all(wire.rejected(body, wire.ChatCompletionRequest) == [] for body in recorder.bodies)


def test_tool_and_structured_output_requests_are_ones_the_server_accepts(recorder):
    class Weather(BaseModel):
        """The weather in a city."""

        city: str

    recorder.answer = lambda request: chat_answer(json.loads(request.content), '{"city": "Paris"}')
    model = chat(recorder)
    model.bind_tools([Weather], tool_choice="Weather").invoke("Weather in Paris?")
    model.with_structured_output(Weather, method="json_schema", include_raw=True).invoke("Paris")
    model.with_structured_output(Weather, method="function_calling", include_raw=True).invoke("Paris")
    tools, schema, function = recorder.bodies
    assert [wire.rejected(body, wire.ChatCompletionRequest) for body in recorder.bodies] == [[], [], []]
    assert tools["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    assert schema["response_format"]["type"] == "json_schema"
    assert function["tools"][0]["function"]["name"] == "Weather"


def test_extra_model_kwargs_are_sent(recorder):
    chat(recorder, model_kwargs={"user": "u-1"}, frequency_penalty=0.5).invoke("Hi")
    [body] = recorder.bodies
    assert (body["user"], body["frequency_penalty"]) == ("u-1", 0.5)


def test_streamed_usage_can_be_turned_off(recorder):
    model = chat(recorder, stream_usage=False)
    chunks = list(model.stream("Hi"))
    assert "stream_options" not in recorder.bodies[0]
    assert all(chunk.usage_metadata is None for chunk in chunks)


def test_answer_carries_usage_model_and_finish_reason(recorder):
    answer = chat(recorder).invoke("Hi")
    assert answer.content == "Hi there"
    assert answer.usage_metadata is not None
    assert (answer.usage_metadata["input_tokens"], answer.usage_metadata["output_tokens"]) == (7, 2)
    assert answer.response_metadata["model_name"] == MODEL
    assert answer.response_metadata["finish_reason"] == "stop"


def test_stream_ends_with_usage_and_finish_reason(recorder):
    chunks = list(chat(recorder).stream("Hi"))
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.content == "Hi there"
    assert full.usage_metadata is not None
    assert full.usage_metadata["total_tokens"] == 9
    assert full.response_metadata["finish_reason"] == "stop"


def test_chat_completions_by_default_and_the_responses_api_when_asked(recorder):
    chat(recorder).invoke("Hi")
    answer = chat(recorder, use_responses_api=True, max_tokens=5).invoke("Hi")
    chat(recorder, output_version="responses/v1").invoke("Hi")  # langchain-openai's own routing rule
    paths = [r.url.path for r in recorder.requests]
    assert paths == ["/v1/chat/completions", "/v1/responses", "/v1/responses"]
    assert answer.text == "Hi there"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["total_tokens"] == 9
    responses_body = recorder.bodies[1]
    assert wire.rejected(responses_body, wire.ResponsesRequest) == []
    assert responses_body["max_output_tokens"] == 5


def test_tracing_names_warmserve_and_the_model():
    params = ChatWarmServe(temperature=0.1, max_tokens=9)._get_ls_params()
    assert params["ls_provider"] == "warmserve"
    assert params["ls_model_name"] == MODEL
    assert (params["ls_temperature"], params["ls_max_tokens"]) == (0.1, 9)


def test_token_ids_are_not_guessed_with_an_openai_tokenizer():
    with pytest.raises(NotImplementedError, match="get_num_tokens"):
        ChatWarmServe().get_token_ids("hello")
    assert ChatWarmServe(custom_get_token_ids=lambda text: [1, 2]).get_token_ids("hello") == [1, 2]


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "context_length_exceeded", ContextOverflowError),
        (400, "unsupported_parameter", ModelInvalidRequestError),
        (401, "invalid_api_key", ModelAuthenticationError),
        (403, "forbidden", ModelPermissionDeniedError),
        (404, "model_not_found", ModelNotFoundError),
        (429, "overloaded", ModelRateLimitError),
        (503, "worker_died", ModelAPIError),
        (503, "model_unavailable", ModelAPIError),
    ],
)
def test_server_errors_become_langchain_errors_with_the_servers_message(recorder, status, code, expected):
    recorder.answer = error_answer(status, code, f"the server says {code}")
    model = chat(recorder)
    for call in (model.invoke, lambda text: list(model.stream(text))):
        with pytest.raises(expected) as info:
            call("Hi")
        assert str(info.value).startswith(f"the server says {code} (HTTP {status}, {code})")
        assert info.value.status_code == status  # still the openai SDK's error, with its fields
        assert info.value.code == code


async def test_async_errors_are_typed_the_same_way(recorder):
    recorder.answer = error_answer(404, "model_not_found", "The model 'x' does not exist.")
    model = chat(recorder)
    with pytest.raises(ModelNotFoundError, match="The model 'x' does not exist"):
        await model.ainvoke("Hi")
    with pytest.raises(ModelNotFoundError, match="The model 'x' does not exist"):
        [chunk async for chunk in model.astream("Hi")]


def test_an_auth_error_without_a_configured_key_says_how_to_set_one(recorder):
    recorder.answer = error_answer(401, "invalid_api_key", "Missing or invalid API key.")
    with pytest.raises(ModelAuthenticationError, match="WARMSERVE_API_KEY"):
        chat(recorder).invoke("Hi")
    with pytest.raises(ModelAuthenticationError) as info:
        chat(recorder, api_key="wrong").invoke("Hi")
    assert "WARMSERVE_API_KEY" not in str(info.value)
    assert recorder.requests[-1].headers["authorization"] == "Bearer wrong"


CAPABILITIES = {"chat": True, "completions": True, "messages": True, "responses": True, "embeddings": True}
CAPABILITIES |= {"tools": True, "json_schema": False}
CARD = wire.valid(
    {
        "id": "smollm2-135m-instruct",
        "object": "model",
        "created": 1,
        "owned_by": "warmserve",
        "backend": "llama_cpp",
        "context_length": 2048,
        "capabilities": {**CAPABILITIES, "logprobs": True, "logit_bias": True, "echo": True, "suffix": False},
        "state": "ready",
        "ready_workers": 1,
        "workers": 1,
    },
    wire.ModelCard,
)


def test_server_capabilities_and_profile_come_from_the_models_endpoint(recorder):
    recorder.answer = lambda request: httpx.Response(200, json=CARD)
    model = ChatWarmServe(base_url=BASE_URL, **recorder.clients())
    capabilities = model.server_capabilities()
    assert recorder.requests[-1].method == "GET"
    assert recorder.requests[-1].url.path == "/v1/models/smollm2-135m-instruct"
    assert (capabilities["tools"], capabilities["context_length"], capabilities["backend"]) == (
        True,
        2048,
        "llama_cpp",
    )
    profile = model.load_profile()
    assert model.profile == profile
    assert (profile["tool_calling"], profile["structured_output"]) == (True, False)
    assert profile["max_input_tokens"] == 2048
    assert profile["image_inputs"] is False


def test_a_server_without_capabilities_says_to_upgrade(recorder):
    recorder.answer = lambda request: httpx.Response(200, json={"id": "m", "object": "model", "created": 1})
    with pytest.raises(ValueError, match="upgrade"):
        ChatWarmServe(base_url=BASE_URL, **recorder.clients()).server_capabilities()


def reasoning_answer(request: httpx.Request) -> httpx.Response:
    """A reasoning model's answer, whole or streamed: its thinking apart from the content."""
    body = json.loads(request.content)
    common = {"id": "c1", "created": 1, "model": body["model"]}
    if body.get("stream"):
        deltas = [
            {"role": "assistant", "content": ""},
            {"reasoning_content": "Think ", "reasoning": "Think "},
            {"reasoning_content": "twice.", "reasoning": "twice."},
            {"content": "Paris."},
        ]
        chunks = [{"choices": [{"index": 0, "delta": delta}]} for delta in deltas]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        typed = [{**common, "object": "chat.completion.chunk", **chunk} for chunk in chunks]
        return sse([wire.valid(chunk, wire.ChatCompletionChunk) for chunk in typed])
    message = {
        "role": "assistant",
        "content": "Paris.",
        "reasoning_content": "Think twice.",
        "reasoning": "Think twice.",
    }
    answer = {
        **common,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }
    return httpx.Response(200, json=wire.valid(answer, wire.ChatCompletion))


def test_a_reasoning_models_thinking_lands_in_additional_kwargs_whole_and_streamed(recorder):
    recorder.answer = reasoning_answer
    model = chat(recorder, reasoning_effort="low")
    message = model.invoke("Capital of France?")
    assert message.content == "Paris."
    assert message.additional_kwargs["reasoning_content"] == "Think twice."
    joined = None
    for chunk in model.stream("Capital of France?"):
        joined = chunk if joined is None else joined + chunk
    assert joined is not None
    assert joined.content == "Paris."
    assert joined.additional_kwargs["reasoning_content"] == "Think twice."
    for body in recorder.bodies:
        assert body["reasoning_effort"] == "low"
        assert wire.rejected(body, wire.ChatCompletionRequest) == []


def test_sampling_extensions_are_typed_fields_sent_in_the_body_only_when_set(recorder):
    first = {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "repeat_last_n": 64}
    second = {"typical_p": 0.9, "dry_multiplier": 0.8, "dry_sequence_breakers": [":"], "xtc_probability": 0.5}
    third = {"mirostat": 2, "mirostat_tau": 4.0, "mirostat_eta": 0.2}
    chat(recorder, **first, extra_body={"user": "u-1"}).invoke("Hi")
    chat(recorder, **second).invoke("Hi")
    chat(recorder, **third).invoke("Hi")
    chat(recorder).invoke("Hi")
    bodies = recorder.bodies
    for sent, body in zip((first, second, third), bodies, strict=False):
        assert {name: body[name] for name in sent} == sent
    assert bodies[0]["user"] == "u-1"  # the caller's own extra_body stays
    assert not {"top_k", "min_p", "mirostat", "typical_p"} & set(bodies[3])
    assert [wire.rejected(body, wire.ChatCompletionRequest) for body in bodies] == [[]] * 4


def test_sampling_extensions_reach_the_responses_api_too(recorder):
    chat(recorder, use_responses_api=True, top_k=1, min_p=0.1).invoke("Hi")
    [body] = recorder.bodies
    assert (body["top_k"], body["min_p"]) == (1, 0.1)
    assert wire.rejected(body, wire.ResponsesRequest) == []


def test_sampling_extensions_are_bounded_here_too():
    with pytest.raises(ValidationError):
        ChatWarmServe(min_p=1.5)
    with pytest.raises(ValidationError):
        ChatWarmServe(mirostat=3)
