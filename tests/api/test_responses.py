"""The OpenAI Responses API, driven by the official `openai` SDK (whose types check the wire format)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.responses import Response
from pydantic import BaseModel

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings

INPUT = "say hello world"


def fake_answer(prompt: str, tokens: int) -> str:
    """The fake renders "role: content" lines and answers with the words reversed (at temperature 0)."""
    return " ".join(list(reversed(prompt.split()))[:tokens])


ANSWER = fake_answer(f"user: {INPUT}", 4)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk_for(http: httpx.AsyncClient, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://warmserve/v1", api_key=key, http_client=http, max_retries=0)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(fake_settings(fail_on="BOOM", server={"data_dir": tmp_path})) as http:
        yield http


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return sdk_for(client)


async def test_create_answers_as_chat_completions_does_with_exact_usage(sdk, client):
    chat = await sdk.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": INPUT}], max_tokens=4, temperature=0
    )
    response = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=4, temperature=0)
    assert response.id.startswith("resp_")
    assert (response.object, response.model, response.status) == ("response", "fake", "incomplete")
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == chat.choices[0].message.content == ANSWER
    [message] = response.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "incomplete")
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.output_tokens == 4
    assert response.usage.total_tokens == response.usage.input_tokens + 4
    raw = await client.post("/v1/responses", json={"model": "fake", "input": INPUT, "max_output_tokens": 4})
    Response.model_validate(raw.json(), strict=True)


async def test_instructions_and_item_input_read_as_chat_messages(sdk):
    items = [
        {"role": "developer", "content": "be brief"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hello"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"role": "user", "content": "world"},
    ]
    response = await sdk.responses.create(
        model="fake", instructions="first", input=items, max_output_tokens=12, temperature=0
    )
    expected = "world user: ok assistant: hello say user: brief be system: first system:"
    assert response.output_text == expected


async def test_stream_sends_the_event_sequence_with_increasing_numbers(sdk, client):
    whole = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=4, temperature=0)
    async with sdk.responses.stream(model="fake", input=INPUT, max_output_tokens=4, temperature=0) as stream:
        events = [event async for event in stream]
    final = events[-1].response  # cut off: response.incomplete, which get_final_response() does not take
    kinds = [event.type for event in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text == whole.output_text == ANSWER
    assert final.usage.output_tokens == whole.usage.output_tokens == 4
    assert final.output[0].id == events[2].item.id
    raw = await client.post("/v1/responses", json={"model": "fake", "input": INPUT, "stream": True})
    assert "[DONE]" not in raw.text
    assert raw.text.startswith("event: response.created\ndata: ")


async def test_a_failure_after_the_stream_began_is_an_error_event_then_response_failed(client):
    raw = await client.post("/v1/responses", json={"model": "fake", "input": "BOOM", "stream": True})
    assert raw.status_code == 200  # the fake fails after two tokens
    frames = [frame for frame in raw.text.split("\n\n") if frame]
    error, failed = (json.loads(frame.split("data: ", 1)[1]) for frame in frames[-2:])
    assert (error["type"], error["message"]) == ("error", "injected fault")
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "injected fault"}
    assert failed["sequence_number"] == error["sequence_number"] + 1
    # what was streamed before the fault is in the failed response, its message cut off
    deltas = [json.loads(f.split("data: ", 1)[1])["delta"] for f in frames if "response.output_text.delta" in f]
    [message] = failed["response"]["output"]
    assert deltas
    assert (message["status"], message["content"][0]["text"]) == ("incomplete", "".join(deltas))


async def test_a_required_tool_call_is_a_function_call_item_and_its_output_round_trips(sdk, client):
    first = await sdk.responses.create(
        model="fake", input=INPUT, tools=[WEATHER], tool_choice="required", max_output_tokens=60
    )
    [call] = first.output
    assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
    assert set(json.loads(call.arguments)) == {"city"}
    assert call.call_id.startswith("call_")
    follow = [
        {"role": "user", "content": INPUT},
        call.model_dump(),  # sent back as the SDK's own item, its unknown fields null
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    answer = await sdk.responses.create(
        model="fake", input=follow, tools=[WEATHER], tool_choice="none", max_output_tokens=2, temperature=0
    )
    assert answer.output_text.split()[0] == "sunny"  # the fake answers with the prompt reversed
    counted = await client.post(
        "/v1/responses/input_tokens", json={"model": "fake", "input": follow, "tools": [WEATHER]}
    )
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": answer.usage.input_tokens}


async def test_a_streamed_named_tool_call_sends_argument_events(sdk):
    add = {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}}
    async with sdk.responses.stream(
        model="fake",
        input=INPUT,
        tools=[WEATHER, add],
        tool_choice={"type": "function", "name": "add"},
        max_output_tokens=60,
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert kinds[-1] == "response.completed"
    assert [(item.type, item.name, item.arguments) for item in final.output] == [("function_call", "add", "{}")]


class City(BaseModel):
    name: str
    population: int


async def test_parse_returns_the_text_format_model(sdk):
    parsed = await sdk.responses.parse(model="fake", input=INPUT, text_format=City, max_output_tokens=200)
    assert isinstance(parsed.output_parsed, City)
    assert parsed.text.format.type == "json_schema"


async def test_json_object_format_answers_with_an_object_and_a_completed_stream(sdk):
    kwargs = {"model": "fake", "input": INPUT, "text": {"format": {"type": "json_object"}}, "max_output_tokens": 200}
    response = await sdk.responses.create(**kwargs)
    assert isinstance(json.loads(response.output_text), dict)
    assert (response.status, response.output[0].status, response.incomplete_details) == ("completed", "completed", None)
    async with sdk.responses.stream(**kwargs) as stream:
        text = "".join([event.delta async for event in stream if event.type == "response.output_text.delta"])
        final = await stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == text
    assert isinstance(json.loads(text), dict)


async def test_a_stored_response_is_retrieved_listed_continued_and_deleted(sdk):
    first = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=4, temperature=0)
    assert (await sdk.responses.retrieve(first.id)).model_dump() == first.model_dump()
    items = await sdk.responses.input_items.list(first.id)
    assert [(item.type, item.role) for item in items.data] == [("message", "user")]
    assert items.data[0].content[0].text == INPUT
    second = await sdk.responses.create(
        model="fake", input="again", previous_response_id=first.id, max_output_tokens=8, temperature=0
    )
    assert second.previous_response_id == first.id
    # the model saw the first turn, its answer, then the new input
    assert second.output_text == fake_answer(f"user: {INPUT} assistant: {ANSWER} user: again", 8)
    listed = await sdk.responses.input_items.list(second.id, order="asc")
    assert [item.type for item in listed.data] == ["message", "message", "message"]
    assert [item.role for item in listed.data] == ["user", "assistant", "user"]
    await sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.responses.retrieve(first.id)
    assert caught.value.body["code"] == "response_not_found"
    # the second turn keeps its own copy of the conversation
    assert (await sdk.responses.retrieve(second.id)).output_text == second.output_text


async def test_store_false_keeps_nothing(sdk):
    response = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=2, store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(response.id)


async def test_a_key_never_reads_another_keys_responses(tmp_path):
    settings = fake_settings(server={"data_dir": tmp_path, "api_keys": ["key-a", "key-b"]})
    async with serve_in_process(settings) as http:
        alice, bob = sdk_for(http, "key-a"), sdk_for(http, "key-b")
        response = await alice.responses.create(model="fake", input=INPUT, max_output_tokens=2)
        for attempt in (
            bob.responses.retrieve(response.id),
            bob.responses.delete(response.id),
            bob.responses.input_items.list(response.id),
        ):
            with pytest.raises(openai.NotFoundError):
                await attempt
        with pytest.raises(openai.BadRequestError) as caught:
            await bob.responses.create(model="fake", input="x", previous_response_id=response.id, max_output_tokens=1)
        assert caught.value.body["code"] == "previous_response_not_found"
        assert (await alice.responses.retrieve(response.id)).id == response.id


async def test_a_conversation_survives_a_restart(tmp_path):
    settings = fake_settings(server={"data_dir": tmp_path})
    async with serve_in_process(settings) as http:
        first = await sdk_for(http).responses.create(model="fake", input=INPUT, max_output_tokens=4, temperature=0)
    async with serve_in_process(settings) as http:
        sdk = sdk_for(http)
        assert (await sdk.responses.retrieve(first.id)).output_text == ANSWER
        second = await sdk.responses.create(
            model="fake", input="again", previous_response_id=first.id, max_output_tokens=3, temperature=0
        )
    assert second.output_text == fake_answer(f"user: {INPUT} assistant: {ANSWER} user: again", 3)


async def test_without_a_store_continuing_is_a_400_and_reading_a_404(tmp_path):
    async with serve_in_process(fake_settings(server={"store": False, "data_dir": tmp_path})) as http:
        sdk = sdk_for(http)
        response = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=2)
        assert response.store is False
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.responses.create(model="fake", input="x", previous_response_id=response.id)
        assert caught.value.body["param"] == "previous_response_id"
        assert "--no-store" in caught.value.body["message"]
        for attempt in (
            sdk.responses.retrieve(response.id),
            sdk.responses.delete(response.id),
            sdk.responses.input_items.list(response.id),
        ):
            with pytest.raises(openai.NotFoundError):
                await attempt
    assert not list(tmp_path.iterdir())  # nothing written


async def test_a_missing_previous_response_is_openais_400(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="fake", input="x", previous_response_id="resp_gone")
    assert (caught.value.body["code"], caught.value.body["param"]) == (
        "previous_response_not_found",
        "previous_response_id",
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"reasoning": {"effort": "low"}}, "reasoning.effort"),  # a model that does not think
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 7}]}]}, "input[0].content[0].text"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "nope"}}}}, "text.format.schema"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"previous_response_id": "resp_nope"}, "previous_response_id"),
    ],
)
async def test_what_this_server_does_not_do_is_an_error_naming_the_parameter(client, extra, param):
    response = await client.post("/v1/responses", json={"model": "fake", "input": INPUT, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error


async def test_neutral_values_of_unsupported_parameters_are_accepted(client):
    body = {"model": "fake", "input": INPUT, "background": False, "truncation": "disabled", "include": []}
    response = await client.post("/v1/responses", json={**body, "max_output_tokens": 1})
    assert response.status_code == 200, response.text


async def test_an_unknown_response_is_a_404_in_openais_shape(client):
    response = await client.get("/v1/responses/resp_missing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "response_not_found"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"model": "fake", "input": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"model": "fake", "input": [{"role": "user", "content": ' + b"[" * 500 + b"]" * 500 + b"}]}",
        b'{"model": "fake", "input": 7}',
        b'{"model": "fake", "input": []}',
        b'{"model": "fake"}',
        b"[]",
    ],
)
async def test_bad_bodies_are_a_400_in_openais_shape_and_the_server_keeps_serving(client, body):
    response = await client.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    again = await client.post("/v1/responses", json={"model": "fake", "input": INPUT, "max_output_tokens": 1})
    assert again.status_code == 200


async def test_a_body_over_the_limit_is_a_413_in_openais_shape(tmp_path):
    async with serve_in_process(fake_settings(server={"max_body_bytes": 2048, "data_dir": tmp_path})) as http:
        response = await http.post("/v1/responses", json={"model": "fake", "input": "x" * 5000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_requests_are_counted_by_route_not_by_response_id(sdk, client):
    response = await sdk.responses.create(model="fake", input=INPUT, max_output_tokens=1)
    await sdk.responses.retrieve(response.id)
    metrics = (await client.get("/metrics")).text
    assert 'endpoint="/v1/responses",status="200"' in metrics
    assert 'endpoint="/v1/responses/{response_id}",status="200"' in metrics
    assert response.id not in metrics


async def test_an_echoed_item_field_we_do_not_know_is_a_400_unless_null(client):
    def body(origin: object) -> dict[str, object]:
        call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "origin": origin}
        return {"model": "fake", "input": [call], "max_output_tokens": 1}

    assert (await client.post("/v1/responses", json=body(None))).status_code == 200
    refused = await client.post("/v1/responses", json=body("elsewhere"))
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "input[0]"
    assert "'origin'" in refused.json()["error"]["message"]


LONE_SURROGATE = '"\\ud800"'  # JSON allows it; UTF-8 cannot encode it


@pytest.mark.parametrize(
    "field",
    [
        '"metadata": {"a": %s}',
        '"user": %s',
        '"instructions": %s',
        '"tools": [{"type": "function", "name": "f", "description": %s}]',
        '"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": %s}]',
        '"input": [{"role": "user", "content": "x", "id": %s}]',
        '"previous_response_id": %s',
    ],
)
async def test_a_lone_surrogate_is_a_400_not_a_stored_500(client, field):
    body = '{"model": "fake", "input": "x", "max_output_tokens": 1, ' + field % LONE_SURROGATE + "}"
    response = await client.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text


async def listed_after(client: httpx.AsyncClient, item: str) -> list[dict[str, object]]:
    """The input_items listing of a response to one raw JSON input item."""
    body = f'{{"model": "fake", "input": [{item}], "max_output_tokens": 1}}'
    response = await client.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    listed = await client.get(f"/v1/responses/{response.json()['id']}/input_items")
    assert listed.status_code == 200
    data: list[dict[str, object]] = listed.json()["data"]
    return data


async def test_a_lone_surrogate_in_free_form_json_is_stored_and_listed_escaped(client):
    caller = f'{{"x": {LONE_SURROGATE}}}'
    [item] = await listed_after(
        client, f'{{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{{}}", "caller": {caller}}}'
    )
    assert item["caller"] == {"x": "\ud800"}


async def test_an_echoed_call_item_is_listed_with_openais_field_names(client):
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "async": False}
    [item] = await listed_after(client, json.dumps(call))
    assert (item["async"], "async_" in item) == (False, False)


async def test_an_assistant_messages_phase_is_kept_in_the_listing(sdk):
    items = [{"role": "assistant", "content": "ok", "phase": "final_answer"}, {"role": "user", "content": INPUT}]
    response = await sdk.responses.create(model="fake", input=items, max_output_tokens=1)
    listed = await sdk.responses.input_items.list(response.id, order="asc")
    assert listed.data[0].phase == "final_answer"
