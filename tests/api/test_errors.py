"""Bad input gets an OpenAI error body with the right status, never a 500 or a traceback."""

import json

import openai
import pytest

OK_CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi there"}]}


def assert_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert "Traceback" not in response.text
    return error


async def test_unknown_model_is_404_model_not_found(client, sdk):
    error = assert_error(
        await client.post("/v1/chat/completions", json={**OK_CHAT, "model": "gpt-9"}),
        404,
        "model_not_found",
        "model",
    )
    assert "fake" in error["message"]
    with pytest.raises(openai.NotFoundError):
        await sdk.completions.create(model="nope", prompt="x")


async def test_malformed_json_is_400(client):
    response = await client.post(
        "/v1/chat/completions",
        content=b'{"model": "fake", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**OK_CHAT, "temperature": 9}, "temperature"),
        ({**OK_CHAT, "max_tokens": -1}, "max_tokens"),
        ({**OK_CHAT, "messages": []}, "messages"),
        ({**OK_CHAT, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({**OK_CHAT, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({**OK_CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({**OK_CHAT, "logit_bias": {"x": 1}}, "logit_bias"),
        ({**OK_CHAT, "logit_bias": {"5": 101}}, "logit_bias"),
        ({**OK_CHAT, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"messages": OK_CHAT["messages"]}, "model"),
    ],
)
async def test_validation_failures_are_400_naming_the_parameter(client, body, param):
    assert_error(await client.post("/v1/chat/completions", json=body), 400, param=param)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"x": 1}, "x"),
    ],
)
async def test_unsupported_parameters_are_400_never_silently_ignored(client, extra, param):
    error = assert_error(
        await client.post("/v1/chat/completions", json={**OK_CHAT, **extra}),
        400,
        "unsupported_parameter",
        param,
    )
    assert param in error["message"]


async def test_hint_parameters_are_accepted(client):
    response = await client.post("/v1/chat/completions", json={**OK_CHAT, "user": "u1", "n": 1, "store": False})
    assert response.status_code == 200


async def test_stream_options_without_stream_is_400(client):
    body = {**OK_CHAT, "stream_options": {"include_usage": True}}
    assert_error(await client.post("/v1/chat/completions", json=body), 400, param="stream_options")


async def test_prompt_plus_max_tokens_over_the_context_is_400_with_the_numbers(client, sdk):
    body = {"model": "fake", "prompt": "a b c", "max_tokens": 300}
    error = assert_error(await client.post("/v1/completions", json=body), 400, "context_length_exceeded", "prompt")
    assert "256" in error["message"]
    assert "303" in error["message"]
    with pytest.raises(openai.BadRequestError, match="context"):
        await sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": "x " * 300}], stream=True)


async def test_a_backend_failure_is_a_500_body_or_an_error_event(client, sdk):
    body = {"model": "fake", "prompt": "BOOM goes the engine", "max_tokens": 10}
    error = assert_error(await client.post("/v1/completions", json=body), 500, "backend_error")
    assert error["type"] == "server_error"
    stream = await sdk.completions.create(**body, stream=True)
    with pytest.raises(openai.APIError, match="injected fault"):
        async for _ in stream:
            pass
    assert (await client.post("/v1/completions", json={"model": "fake", "prompt": "fine"})).status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/completions", {"prompt": "BOOM goes the engine"}),
        ("/v1/completions", {"prompt": ["x y z", "BOOM a b c"]}),  # one choice of two fails
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "BOOM now"}], "n": 2}),
    ],
)
async def test_a_failing_stream_ends_with_one_error_event_and_no_done(client, route, body):
    response = await client.post(route, json={"model": "fake", "max_tokens": 50, "stream": True, **body})
    assert response.status_code == 200
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert all(frame.startswith("data: {") for frame in frames), frames  # no [DONE]
    assert json.loads(frames[-1].removeprefix("data: "))["error"]["code"] == "backend_error"
    assert all("error" not in json.loads(frame.removeprefix("data: ")) for frame in frames[:-1])
    assert (await client.post("/v1/completions", json={"model": "fake", "prompt": "fine"})).status_code == 200


async def test_unknown_routes_and_methods_get_openai_errors(client):
    assert_error(await client.get("/v1/nothing"), 404)
    assert_error(await client.get("/v1/chat/completions"), 405)


async def test_ready_and_health(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = (await client.get("/ready")).json()
    assert ready == {"status": "ready", "models": {"fake": {"state": "ready", "ready_workers": 1, "workers": 1}}}


async def test_a_lone_surrogate_is_a_400_not_an_engine_failure(client):
    body = '{"model": "fake", "prompt": "a \\ud800 b", "max_tokens": 3}'
    response = await client.post("/v1/completions", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, param="prompt")


async def test_one_failing_prompt_fails_the_request_and_cancels_its_siblings(client):
    body = {"model": "fake", "prompt": ["BOOM a b c", "x y z"], "max_tokens": 200}
    assert_error(await client.post("/v1/completions", json=body), 500, "backend_error")
    assert (await client.post("/v1/completions", json={"model": "fake", "prompt": "fine"})).status_code == 200


async def test_completions_without_max_tokens_stop_at_openais_default_of_16(client):
    for body in ({"model": "fake", "prompt": "a b"}, {"model": "fake", "prompt": "a b", "max_tokens": None}):
        assert (await client.post("/v1/completions", json=body)).json()["usage"]["completion_tokens"] == 16
