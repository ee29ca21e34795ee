"""The Anthropic Messages API, driven by the official `anthropic` SDK and checked against its types.

The SDK brings its own HTTP library (`httpx2`, not `httpx`), so it gets its own ASGI
transport to the same in-process app as the raw `httpx` client.
"""

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import Message

from tests.api.conftest import serve_in_process, serve_with_workers
from tests.conftest import fake_settings
from warmserve.api import messages as messages_route
from warmserve.api.errors import error_response
from warmserve.api.messages import stop_reason, usage
from warmserve.config import ServerSettings
from warmserve.errors import Overloaded, PayloadTooLarge, QueueTimeout, RequestTimeout
from warmserve.generation import Finished

SYSTEM = "be brief"
MESSAGES = [{"role": "user", "content": "say hello world"}]
# The fake renders "role: content" lines (the system prompt first) and answers with the words reversed
# (at temperature 0; this SDK has no `temperature` argument any more, older ones send it), over and over.
ANSWER = "world hello say user: brief be system:"
GREEDY = {"temperature": 0}


@asynccontextmanager
async def serve_both(settings: ServerSettings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx2.AsyncClient]]:
    """The app (ready) with a raw `httpx` client and an `httpx2` one for the SDK, both without a socket."""
    async with serve_in_process(settings) as http:
        app = http._transport.app  # type: ignore[attr-defined]  # the ASGITransport serve_in_process built
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://warmserve") as http2:
            yield http, http2


def event_names(stream: str) -> list[str]:
    return re.findall(r"^event: (\S+)$", stream, flags=re.MULTILINE)


def anthropic_client(http2: httpx2.AsyncClient, key: str = "x") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url="http://warmserve", http_client=http2, api_key=key, max_retries=0)


@pytest.fixture
async def both() -> AsyncIterator[tuple[httpx.AsyncClient, httpx2.AsyncClient]]:
    async with serve_both(fake_settings(fail_on="BOOM")) as clients:
        yield clients


@pytest.fixture
def client(both: tuple[httpx.AsyncClient, httpx2.AsyncClient]) -> httpx.AsyncClient:
    return both[0]


@pytest.fixture
def claude(both: tuple[httpx.AsyncClient, httpx2.AsyncClient]) -> anthropic.AsyncAnthropic:
    return anthropic_client(both[1])


async def test_create_answers_a_message_in_anthropics_shape_with_exact_usage(claude, client):
    message = await claude.messages.create(
        model="fake", system=SYSTEM, messages=MESSAGES, max_tokens=7, metadata={"user_id": "u1"}, extra_body=GREEDY
    )
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", "fake")
    assert [(block.type, block.text) for block in message.content] == [("text", ANSWER)]
    assert (message.stop_reason, message.stop_sequence) == ("max_tokens", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 7)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)
    raw = await client.post(
        "/v1/messages",
        json={
            "model": "fake",
            "system": [{"type": "text", "text": SYSTEM}],
            "messages": MESSAGES,
            "max_tokens": 7,
            **GREEDY,
        },
        headers={"anthropic-version": "2023-06-01", "anthropic-beta": "anything"},
    )
    Message.model_validate(raw.json(), strict=True)
    assert raw.json()["content"] == [{"type": "text", "text": ANSWER}]


async def test_block_content_reads_as_its_joined_text(claude):
    blocks = [{"type": "text", "text": "say hello"}, {"type": "text", "text": " world"}]
    message = await claude.messages.create(
        model="fake", system=SYSTEM, messages=[{"role": "user", "content": blocks}], max_tokens=7, extra_body=GREEDY
    )
    assert message.content[0].text == ANSWER


async def test_max_tokens_cuts_the_answer_off_with_stop_reason_max_tokens(claude):
    message = await claude.messages.create(
        model="fake", system=SYSTEM, messages=MESSAGES, max_tokens=3, extra_body=GREEDY
    )
    assert (message.content[0].text, message.stop_reason) == ("world hello say", "max_tokens")
    assert message.usage.output_tokens == 3


async def test_a_stop_sequence_ends_the_answer_and_is_named(claude):
    message = await claude.messages.create(
        model="fake",
        system=SYSTEM,
        messages=MESSAGES,
        max_tokens=50,
        stop_sequences=["nothing", "say"],
        extra_body=GREEDY,
    )
    assert message.content[0].text == "world hello "
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "say")


async def test_stream_sends_anthropics_event_sequence_with_the_same_text(claude, client):
    whole = await claude.messages.create(
        model="fake", system=SYSTEM, messages=MESSAGES, max_tokens=7, extra_body=GREEDY
    )
    async with claude.messages.stream(
        model="fake", system=SYSTEM, messages=MESSAGES, max_tokens=7, extra_body=GREEDY
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].text == whole.content[0].text == ANSWER
    assert final.stop_reason == "max_tokens"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 7)
    raw = await client.post(
        "/v1/messages",
        json={"model": "fake", "messages": MESSAGES, "max_tokens": 2, "stop_sequences": ["x"], "stream": True},
    )
    assert "[DONE]" not in raw.text
    assert raw.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert '"delta":{"stop_reason":"max_tokens","stop_sequence":null}' in raw.text
    assert event_names(raw.text)[:3] == ["message_start", "ping", "content_block_start"]  # as Anthropic's stream
    assert 'event: ping\ndata: {"type":"ping"}\n\n' in raw.text
    data = [json.loads(line) for line in re.findall(r"^data: (.*)$", raw.text, flags=re.MULTILINE)]
    prompt = {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert data[0]["message"]["usage"] == {**prompt, "output_tokens": 0}  # message_start
    assert data[-2]["usage"] == {**prompt, "output_tokens": 2}  # message_delta


async def test_a_stream_pings_while_the_model_is_silent(monkeypatch):
    monkeypatch.setattr(messages_route, "PING_INTERVAL_S", 0.005)
    body = {"model": "fake", "messages": MESSAGES, "max_tokens": 3, "stream": True}
    async with serve_with_workers(fake_settings(token_delay_s=0.3)) as http:  # the worker sleeps, the API does not
        raw = await http.post("/v1/messages", json=body)
    names = event_names(raw.text)
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    between_tokens = names[3 : names.index("content_block_stop")]
    assert between_tokens.count("content_block_delta") == 3
    assert "ping" in between_tokens
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_usage_splits_the_prompt_into_computed_and_cache_read_tokens():
    counts = usage(prompt_tokens=10, cached_tokens=4, output_tokens=3)
    assert (counts.input_tokens, counts.cache_read_input_tokens, counts.cache_creation_input_tokens) == (6, 4, 0)
    assert counts.output_tokens == 3


@pytest.mark.parametrize(
    ("finished", "reason"),
    [
        (Finished("stop", 1, 1), "end_turn"),
        (Finished("stop", 1, 1, stop_sequence="x"), "stop_sequence"),
        (Finished("length", 1, 1), "max_tokens"),
    ],
)
def test_stop_reason_says_how_the_engine_finished(finished, reason):
    assert stop_reason(finished) == reason


async def test_a_failure_after_the_stream_began_is_an_anthropic_error_event(client):
    body = {"model": "fake", "messages": [{"role": "user", "content": "BOOM"}], "max_tokens": 5, "stream": True}
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200  # the fake fails after two tokens
    assert response.text.endswith(
        'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"injected fault"}}\n\n'
    )


async def test_count_tokens_equals_the_input_tokens_a_call_reports_cache_included(claude):
    counted = await claude.messages.count_tokens(model="fake", system=SYSTEM, messages=MESSAGES)
    message = await claude.messages.create(model="fake", system=SYSTEM, messages=MESSAGES, max_tokens=1)
    cache = message.usage.cache_read_input_tokens + message.usage.cache_creation_input_tokens
    assert counted.input_tokens == message.usage.input_tokens + cache == 7


async def test_missing_max_tokens_is_an_anthropic_400(client):
    response = await client.post("/v1/messages", json={"model": "fake", "messages": MESSAGES})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


async def test_an_unknown_model_is_a_not_found_error(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        await claude.messages.create(model="nope", messages=MESSAGES, max_tokens=5)
    assert caught.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("extra", [{"tfs_z": 0.9}, {"mcp_servers": [{"type": "url", "url": "http://x", "name": "x"}]}])
async def test_unsupported_parameters_are_a_400_naming_them(claude, extra):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model="fake", messages=MESSAGES, max_tokens=5, extra_body=extra)
    [name] = extra
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert f"'{name}'" in caught.value.body["error"]["message"]


async def test_openai_routes_keep_the_openai_error_shape(client):
    response = await client.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES})
    assert response.json()["error"]["code"] == "model_not_found"


async def test_x_api_key_opens_the_api_and_a_wrong_one_is_an_authentication_error():
    async with serve_both(fake_settings(server={"api_keys": ["right"]})) as (http, http2):
        message = await anthropic_client(http2, "right").messages.create(model="fake", messages=MESSAGES, max_tokens=2)
        assert message.stop_reason == "max_tokens"
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await anthropic_client(http2, "wrong").messages.create(model="fake", messages=MESSAGES, max_tokens=2)
        assert caught.value.body["error"]["type"] == "authentication_error"
        chat = {"model": "fake", "messages": MESSAGES, "max_tokens": 2}
        assert (await http.post("/v1/chat/completions", json=chat, headers={"x-api-key": "right"})).status_code == 200


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Overloaded("busy"), "rate_limit_error"),
        (QueueTimeout("waited"), "overloaded_error"),
        (PayloadTooLarge("big"), "request_too_large"),
        (RequestTimeout("slow"), "api_error"),
    ],
)
def test_typed_errors_on_messages_routes_keep_their_status_in_anthropics_shape(error, kind):
    response = error_response(error, "/v1/messages")
    assert response.status_code == error.status_code
    assert json.loads(response.body) == {"type": "error", "error": {"type": kind, "message": error.message}}
    assert response.headers.get("retry-after") == (str(error.retry_after_s) if error.retry_after_s else None)
    assert "code" in json.loads(error_response(error, "/v1/chat/completions").body)["error"]


WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ADD = {"name": "add", "input_schema": {"type": "object", "properties": {}}}


async def test_tool_choice_any_returns_a_tool_use_block_with_valid_input(claude):
    message = await claude.messages.create(
        model="fake", messages=MESSAGES, max_tokens=60, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert message.stop_reason == "tool_use"
    [use] = [block for block in message.content if block.type == "tool_use"]
    assert use.name == "get_weather"
    assert set(use.input) == {"city"}
    assert use.id


async def test_a_named_tool_choice_calls_that_tool_and_the_stream_assembles_it(claude, client):
    kwargs = {"tools": [WEATHER, ADD], "tool_choice": {"type": "tool", "name": "add"}}
    async with claude.messages.stream(model="fake", messages=MESSAGES, max_tokens=60, **kwargs) as stream:
        final = await stream.get_final_message()
    assert [(block.type, block.name) for block in final.content] == [("tool_use", "add")]
    assert final.content[0].input == {}
    assert final.stop_reason == "tool_use"
    raw = await client.post(
        "/v1/messages", json={"model": "fake", "messages": MESSAGES, "max_tokens": 60, "stream": True, **kwargs}
    )
    assert '"delta":{"type":"input_json_delta","partial_json":"{}"}' in raw.text
    assert '"content_block":{"type":"tool_use","id":' in raw.text


async def test_tool_choice_none_and_auto_answer_in_text(claude):
    for choice in ({"type": "none"}, {"type": "auto"}):
        message = await claude.messages.create(
            model="fake", messages=MESSAGES, max_tokens=3, tools=[WEATHER], tool_choice=choice
        )
        assert [block.type for block in message.content] == ["text"]
        assert message.stop_reason == "max_tokens"


async def test_a_tool_result_round_trip_reaches_the_model_and_is_counted(claude):
    first = await claude.messages.create(
        model="fake", messages=MESSAGES, max_tokens=60, tools=[WEATHER], tool_choice={"type": "any"}
    )
    [use] = [block for block in first.content if block.type == "tool_use"]
    turns = [
        *MESSAGES,
        {"role": "assistant", "content": first.content},  # sent back as the SDK's own blocks
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    answer = await claude.messages.create(
        model="fake", messages=turns, max_tokens=2, tools=[WEATHER], extra_body=GREEDY
    )
    assert answer.content[0].text.split()[0] == "sunny"  # the fake answers with the prompt reversed
    counted = await claude.messages.count_tokens(model="fake", messages=turns, tools=[WEATHER])
    assert counted.input_tokens == answer.usage.input_tokens
    without_tools = await claude.messages.count_tokens(model="fake", messages=MESSAGES)
    assert counted.input_tokens > without_tools.input_tokens


async def test_tool_blocks_in_the_wrong_turn_are_a_400(claude):
    misplaced = [{"role": "user", "content": [{"type": "tool_use", "id": "t1", "name": "add", "input": {}}]}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model="fake", messages=misplaced, max_tokens=5, tools=[ADD])
    assert "tool_use blocks belong in assistant messages" in caught.value.body["error"]["message"]


async def test_a_tool_choice_naming_an_unknown_tool_is_a_400(claude):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="fake", messages=MESSAGES, max_tokens=5, tools=[ADD], tool_choice={"type": "tool", "name": "nope"}
        )
    assert "'nope'" in caught.value.body["error"]["message"]


async def test_a_block_field_we_do_not_support_is_a_400_unless_null(client):
    def body(citations: object) -> dict[str, object]:
        block = {"type": "text", "text": "say hello world", "citations": citations}
        return {"model": "fake", "messages": [{"role": "user", "content": [block]}], "max_tokens": 2}

    assert (await client.post("/v1/messages", json=body(None))).status_code == 200
    refused = await client.post("/v1/messages", json=body([{"type": "char_location"}]))
    assert refused.status_code == 400
    assert "'citations'" in refused.json()["error"]["message"]


async def post_raw(
    client: httpx.AsyncClient, body: bytes | AsyncIterator[bytes], path: str = "/v1/messages"
) -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


def assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error"}
    assert (body["type"], body["error"]["type"]) == ("error", kind)
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"model": "fake", "max_tokens": 2, "messages": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"model": "fake", "max_tokens": 2, "messages": [{"role": "user", "content": ' + b"[" * 5000 + b"]" * 5000,
        b'{"model": "fake", "max_tokens": 1e400, "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "fake", "max_tokens": 2, "messages": [{"role": "user", "content": "\xff\xfe bad utf-8"}]}',
        b'"just a string"',
        b"",
    ],
)
async def test_hostile_bodies_get_an_anthropic_400_and_the_server_is_unharmed(client, body):
    assert_anthropic_error(await post_raw(client, body), 400, "invalid_request_error")
    healthy = await client.post("/v1/messages", json={"model": "fake", "messages": MESSAGES, "max_tokens": 2})
    assert healthy.status_code == 200


async def test_a_body_over_the_limit_is_an_anthropic_413_declared_or_streamed():
    async with serve_in_process(fake_settings(server={"max_body_bytes": 2048})) as http:
        big = json.dumps({"model": "fake", "messages": [{"role": "user", "content": "x" * 5000}], "max_tokens": 2})

        async def chunks():
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000].encode()

        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            assert_anthropic_error(await post_raw(http, big.encode(), path), 413, "request_too_large")
            assert_anthropic_error(await post_raw(http, chunks(), path), 413, "request_too_large")
        small = {"model": "fake", "messages": MESSAGES, "max_tokens": 2}
        assert (await http.post("/v1/messages", json=small)).status_code == 200
