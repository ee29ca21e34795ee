"""End to end: structured output and tool calls from the real SmolLM2 GGUF, through the openai client.

SmolLM2-135M alone writes neither valid JSON nor tool calls reliably; the grammar is what
makes every answer here parse and validate. Arrays and free-text strings are bounded
(maxItems, maxLength) and objects closed (additionalProperties false) because a 135M
model at temperature 0 otherwise repeats an item, a phrase or a key until max_tokens:
valid so far, but cut off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from typing import Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import ServerProcess, start_server
from warmserve.config import EMBEDDED_MODEL_NAME

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    },
}


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


class Mood(str, Enum):
    happy = "happy"
    sad = "sad"
    angry = "angry"


class Review(BaseModel):
    mood: Mood
    stars: int = Field(ge=1, le=5)
    summary: str = Field(max_length=60)


class Recipe(BaseModel):
    title: str = Field(max_length=40)
    ingredients: list[str] = Field(min_length=1, max_length=4)
    steps: list[str] = Field(max_length=3)
    vegetarian: bool


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(["--workers", "1", "--threads", "2", "--n-ctx", "2048"], tmp_path_factory.mktemp("struct"))
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("model", "question"),
    [
        (Person, "Describe a person who lives in Paris."),
        (Review, "Review this film: it was a wonderful, moving story."),
        (Recipe, "Give me a simple pancake recipe."),
    ],
)
def test_parse_helper_returns_a_valid_instance_of_the_pydantic_model(client, model, question):
    answer = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": question}],
        response_format=model,
        temperature=0,
        max_tokens=300,
    )
    [choice] = answer.choices
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, model)
    jsonschema.validate(json.loads(choice.message.content), model.model_json_schema())


def test_json_object_mode_answers_json(client):
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "List two fruits and their colours as JSON."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=200,
    )
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


def _round_trip(client: openai.OpenAI, tool_choice: object, question: str) -> None:
    messages: list = [{"role": "user", "content": question}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER, ADD], tool_choice=tool_choice, temperature=0, max_tokens=100
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls
    for call in calls:
        schema = {"get_weather": WEATHER, "add": ADD}[call.function.name]["function"]["parameters"]
        jsonschema.validate(json.loads(call.function.arguments), schema)
    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "21 degrees, sunny"} for call in calls]
    # "none": the answer must be text (under "auto" a 135M model may as well call again).
    final = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER, ADD], tool_choice="none", temperature=0, max_tokens=40
    )
    assert final.choices[0].message.content
    assert final.choices[0].message.tool_calls is None
    return calls


def test_a_required_tool_call_round_trip(client):
    calls = _round_trip(client, "required", "What is the weather like in Paris?")
    assert calls[0].function.name == "get_weather"


def test_a_named_tool_call_round_trip_calls_that_function(client):
    named = {"type": "function", "function": {"name": "add"}}
    [call] = _round_trip(client, named, "What is the weather like in Paris?")
    assert call.function.name == "add"


def test_auto_may_answer_or_call_and_either_is_well_formed(client):
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather like in Paris?"}],
        tools=[WEATHER, ADD],
        temperature=0,
        max_tokens=60,
    )
    message = answer.choices[0].message
    if message.tool_calls:
        assert answer.choices[0].finish_reason == "tool_calls"
        for call in message.tool_calls:
            json.loads(call.function.arguments)
    else:
        assert message.content
        assert not message.content.startswith("<")


def test_streamed_tool_call_deltas_assemble_into_the_same_call(client):
    params = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the weather like in Berlin?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "temperature": 0,
        "max_tokens": 100,
    }
    plain = client.chat.completions.create(**params).choices[0].message.tool_calls
    with client.chat.completions.stream(**params) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        (c.function.name, c.function.arguments) for c in plain
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def check_a_call_cut_off_by_max_tokens_shows_no_markup(client: openai.OpenAI, model: str) -> None:
    """A required call that max_tokens cuts off: finish_reason length, no `<tool_call>` markup in the
    content, whole or streamed, and no call (its JSON is incomplete)."""
    asked: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "What is the weather like in Paris?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "temperature": 0,
        "max_tokens": 8,
    }
    answer = client.chat.completions.create(**asked)
    choice = answer.choices[0]
    assert choice.finish_reason == "length"
    assert "<tool_call>" not in (choice.message.content or "")
    assert not choice.message.tool_calls
    chunks = list(client.chat.completions.create(**asked, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "<tool_call>" not in streamed
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


def test_a_tool_call_cut_off_by_max_tokens_is_no_content(client):
    check_a_call_cut_off_by_max_tokens_shows_no_markup(client, MODEL)
