"""response_format and tools on the chat route, with the fake engine following the grammars."""

import asyncio
import json
from enum import Enum

import jsonschema
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from tests.api.test_errors import assert_error

USER = [{"role": "user", "content": "tell me something"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}
NAMED_ADD = {"type": "function", "function": {"name": "add"}}


class Colour(str, Enum):
    red = "red"
    green = "green"


class Address(BaseModel):
    city: str
    zip_code: str


class Person(BaseModel):
    name: str
    age: int
    favourite: Colour
    nicknames: list[str]
    address: Address


def chat(**fields):
    return {"model": "fake", "messages": USER, "max_tokens": 200, "temperature": 0, **fields}


async def test_the_sdks_parse_helper_gets_an_instance_of_the_pydantic_model(sdk):
    answer = await sdk.chat.completions.parse(model="fake", messages=USER, response_format=Person, max_tokens=200)
    [choice] = answer.choices
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Person)
    jsonschema.validate(json.loads(choice.message.content), Person.model_json_schema())


async def test_json_object_mode_answers_a_json_object(client):
    body = (await client.post("/v1/chat/completions", json=chat(response_format={"type": "json_object"}))).json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {}


async def test_a_malformed_schema_is_a_400_and_a_concurrent_request_still_succeeds(client):
    bad = chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}})
    good = chat(response_format={"type": "json_object"}, stream=True)

    async def stream_good() -> str:
        async with client.stream("POST", "/v1/chat/completions", json=good) as response:
            assert response.status_code == 200
            return "".join([line async for line in response.aiter_lines()])

    streamed, rejected = await asyncio.gather(stream_good(), client.post("/v1/chat/completions", json=bad))
    assert_error(rejected, 400, param="response_format")
    assert "Invalid type: strin" in rejected.json()["error"]["message"]
    assert streamed.endswith("data: [DONE]")


async def test_an_unknown_model_is_a_404_before_its_schema_or_tools_are_compiled(client):
    bad_schema = chat(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}}
    )
    bad_tool = chat(tools=[{**ADD, "function": {"name": "add", "parameters": {"type": "strin"}}}])
    for body in (bad_schema, bad_tool):
        assert_error(await client.post("/v1/chat/completions", json={**body, "model": "nope"}), 404, "model_not_found")
        assert_error(await client.post("/v1/chat/completions", json=body), 400)


async def test_an_unsupported_schema_keyword_is_a_400_not_a_silent_fallback(client):
    schema = {"type": "object", "properties": {"a": {"not": {"type": "string"}}}}
    bad = chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert_error(await client.post("/v1/chat/completions", json=bad), 400, param="response_format")


async def test_response_format_is_not_a_completions_parameter(client):
    body = {"model": "fake", "prompt": "x", "response_format": {"type": "json_object"}}
    assert_error(await client.post("/v1/completions", json=body), 400, param="response_format")


async def test_required_tool_choice_returns_tool_calls_with_valid_arguments(client):
    raw = await client.post("/v1/chat/completions", json=chat(tools=[WEATHER], tool_choice="required"))
    answer = ChatCompletion.model_validate(raw.json())
    [choice] = answer.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name) == ("function", "get_weather")
    assert call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


async def test_a_named_tool_choice_calls_that_function_not_another(sdk):
    choice = {"type": "function", "function": {"name": "add"}}
    answer = await sdk.chat.completions.create(**chat(tools=[WEATHER, ADD], tool_choice=choice))
    [call] = answer.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("add", {})


async def test_auto_answers_in_text_unless_the_model_opens_a_call(sdk):
    plain = await sdk.chat.completions.create(**chat(tools=[WEATHER], max_tokens=3))
    assert plain.choices[0].message.content == "something me tell"
    assert plain.choices[0].message.tool_calls is None
    # The fake's first word is the prompt's last one: here it opens a call block.
    messages = [{"role": "user", "content": "call it <tool_call>"}]
    called = await sdk.chat.completions.create(**{**chat(tools=[NAMED_ADD]), "messages": messages})
    assert called.choices[0].finish_reason == "tool_calls"
    assert called.choices[0].message.tool_calls[0].function.name == "add"


async def test_tool_choice_none_answers_in_text(sdk):
    answer = await sdk.chat.completions.create(**chat(tools=[WEATHER], tool_choice="none", max_tokens=3))
    assert answer.choices[0].message.content == "something me tell"
    assert answer.choices[0].finish_reason == "length"


async def test_streamed_tool_calls_arrive_as_deltas_the_sdk_assembles(sdk, client):
    async with sdk.chat.completions.stream(**chat(tools=[WEATHER], tool_choice="required")) as stream:
        final = await stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert final.choices[0].finish_reason == "tool_calls"

    async with client.stream(
        "POST", "/v1/chat/completions", json=chat(tools=[WEATHER], tool_choice="required", stream=True)
    ) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    chunks = [ChatCompletionChunk.model_validate(json.loads(line[6:])) for line in lines]
    deltas = [c.choices[0].delta for c in chunks if c.choices[0].delta.tool_calls]
    head = deltas[0].tool_calls[0]
    assert head.id.startswith("call_")
    assert head.model_dump(exclude_none=True) == {
        "index": 0,
        "id": head.id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert json.loads("".join(d.tool_calls[0].function.arguments for d in deltas))["city"] == ""
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.choices[0].delta.content in (None, "") for c in chunks)


async def test_a_tool_round_trip_takes_the_result_on_the_next_turn(sdk):
    first = await sdk.chat.completions.create(**chat(tools=[WEATHER], tool_choice="required"))
    message = first.choices[0].message
    call = message.tool_calls[0]
    messages = [
        *USER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    final = await sdk.chat.completions.create(**{**chat(tools=[WEATHER], max_tokens=2), "messages": messages})
    assert final.choices[0].message.content == "sunny tool:"


async def test_tool_requests_that_make_no_sense_are_400s_naming_the_parameter(client):
    unknown = {"type": "function", "function": {"name": "nope"}}
    for body, param in [
        (chat(tools=[WEATHER], tool_choice=unknown), "tool_choice"),
        (chat(tool_choice="required"), "tool_choice"),
        (chat(tools=[{"type": "function"}]), "tools[0].function"),
        (chat(tools=[WEATHER, WEATHER]), "tools[1].function.name"),
        (
            chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]),
            "tools[0].function.parameters",
        ),
        (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0]"),
        (chat(messages=[{"role": "user", "content": None}]), "messages[0]"),
    ]:
        assert_error(await client.post("/v1/chat/completions", json=body), 400, param=param)
