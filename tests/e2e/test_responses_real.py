"""End to end: the OpenAI Responses API on the real SmolLM2 GGUF, driven by the official `openai` client."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import start_server
from warmserve.config import EMBEDDED_MODEL_NAME
from warmserve.testing import ServerProcess

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
INSTRUCTIONS = "You are a terse assistant."
QUESTION = "Name three colours of the rainbow."
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


@pytest.fixture(scope="module")
def server(smollm_server: ServerProcess) -> ServerProcess:
    return smollm_server


def test_create_and_stream_answer_as_chat_completions_does_at_temperature_0(client):
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": QUESTION}],
        max_tokens=24,
        temperature=0,
    )
    kwargs = {"model": MODEL, "instructions": INSTRUCTIONS, "input": QUESTION, "max_output_tokens": 24}
    response = client.responses.create(**kwargs, temperature=0)
    with client.responses.stream(**kwargs, temperature=0) as stream:
        events = list(stream)
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response
    expected = chat.choices[0].message.content
    assert expected
    assert response.output_text == streamed == final.output_text == expected
    status = {"stop": "completed", "length": "incomplete"}[chat.choices[0].finish_reason]
    assert response.status == final.status == status
    assert events[-1].type == f"response.{status}"
    assert response.usage.input_tokens == final.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.output_tokens == final.usage.output_tokens == chat.usage.completion_tokens


class Colour(BaseModel):
    name: str
    hex_code: str


def test_parse_fills_the_text_format_model_through_constrained_decoding(client):
    parsed = client.responses.parse(
        model=MODEL, input="Describe the colour red.", text_format=Colour, max_output_tokens=60, temperature=0
    )
    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, Colour)
    assert parsed.output_parsed == Colour.model_validate_json(parsed.output_text)


def test_a_tool_round_trip_with_function_call_output(client):
    first = client.responses.create(
        model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required", temperature=0
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    follow = [
        {"role": "user", "content": "What is the weather in Paris?"},
        call,
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24 degrees."},
    ]
    answer = client.responses.create(
        model=MODEL, input=follow, tools=[WEATHER], tool_choice="none", max_output_tokens=30, temperature=0
    )
    assert answer.output_text.strip()
    assert all(item.type == "message" for item in answer.output)
    counted = client.responses.input_tokens.count(model=MODEL, input=follow, tools=[WEATHER], tool_choice="none")
    assert counted.input_tokens == answer.usage.input_tokens


def test_retrieve_delete_and_one_key_cannot_see_anothers(server):
    alice, bob = server.openai_client(api_key="alice"), server.openai_client(api_key="bob")
    response = alice.responses.create(model=MODEL, input=QUESTION, max_output_tokens=8, temperature=0)
    assert alice.responses.retrieve(response.id).output_text == response.output_text
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as caught:
        bob.responses.create(model=MODEL, input="And?", previous_response_id=response.id, max_output_tokens=4)
    assert caught.value.body["code"] == "previous_response_not_found"
    alice.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(response.id)


def test_previous_response_id_continues_across_a_server_restart(tmp_path: Path):
    args = ["--workers", "1", "--threads", "1", "--n-ctx", "1024", "--data-dir", str(tmp_path / "data")]
    first_server = start_server(args, tmp_path)
    try:
        first = first_server.openai_client().responses.create(
            model=MODEL, instructions=INSTRUCTIONS, input=QUESTION, max_output_tokens=16, temperature=0
        )
    finally:
        first_server.stop()
    second_server = start_server(args, tmp_path)
    try:
        client = second_server.openai_client()
        assert client.responses.retrieve(first.id).output_text == first.output_text
        follow_up = "Now name one more."
        continued = client.responses.create(
            model=MODEL, input=follow_up, previous_response_id=first.id, max_output_tokens=16, temperature=0
        )
        # The same conversation sent whole, without the store: the model must have seen exactly this.
        whole = client.responses.create(
            model=MODEL,
            input=[
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first.output_text},
                {"role": "user", "content": follow_up},
            ],
            max_output_tokens=16,
            temperature=0,
            store=False,
        )
    finally:
        second_server.stop()
    assert continued.output_text == whole.output_text
    assert continued.usage.input_tokens == whole.usage.input_tokens
