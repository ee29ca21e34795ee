"""End to end: the Anthropic Messages API on the real SmolLM2 GGUF, driven by the official `anthropic` client."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types import Usage

from tests.conftest import ServerProcess
from warmserve.config import EMBEDDED_MODEL_NAME

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
SYSTEM = "You are a terse assistant."
QUESTION = "Name three colours of the rainbow."
GREEDY = {"temperature": 0}  # this SDK has no `temperature` argument; the wire field is still Anthropic's


def whole_prompt(usage: Usage) -> int:
    """The prompt's length as count_tokens gives it: Anthropic's input_tokens leave the cache out."""
    return usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)


@pytest.fixture(scope="module")
def server(smollm_server: ServerProcess) -> ServerProcess:
    return smollm_server


@pytest.fixture(scope="module")
def claude(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)


def test_create_and_stream_answer_as_chat_completions_does_at_temperature_0(claude, client):
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        max_tokens=24,
        temperature=0,
    )
    messages = [{"role": "user", "content": QUESTION}]
    message = claude.messages.create(model=MODEL, system=SYSTEM, messages=messages, max_tokens=24, extra_body=GREEDY)
    with claude.messages.stream(
        model=MODEL, system=SYSTEM, messages=messages, max_tokens=24, extra_body=GREEDY
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    expected = chat.choices[0].message.content
    assert expected
    assert message.content[0].text == streamed == final.content[0].text == expected
    reason = {"stop": "end_turn", "length": "max_tokens"}[chat.choices[0].finish_reason]
    assert message.stop_reason == final.stop_reason == reason
    assert whole_prompt(message.usage) == whole_prompt(final.usage) == chat.usage.prompt_tokens
    assert message.usage.output_tokens == final.usage.output_tokens == chat.usage.completion_tokens


def test_count_tokens_equals_a_real_calls_input_and_cache_read_tokens(claude):
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION + " Just three."}]}]
    counted = claude.messages.count_tokens(model=MODEL, system=SYSTEM, messages=messages)
    first = claude.messages.create(model=MODEL, system=SYSTEM, messages=messages, max_tokens=1)
    again = claude.messages.create(model=MODEL, system=SYSTEM, messages=messages, max_tokens=1)
    assert counted.input_tokens == whole_prompt(first.usage) == whole_prompt(again.usage) > 10
    # An idle pool sends both to its first worker, whose slot still holds the prompt: a cache read.
    assert again.usage.cache_read_input_tokens > 0
    assert again.usage.input_tokens < counted.input_tokens
    assert first.usage.cache_creation_input_tokens == again.usage.cache_creation_input_tokens == 0


def test_errors_come_in_anthropics_shape(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert caught.value.body["error"]["type"] == "not_found_error"


WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_forced_tool_use_and_a_tool_result_round_trip(claude):
    turns: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    forced = {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather"}}
    first = claude.messages.create(model=MODEL, messages=turns, max_tokens=64, extra_body=GREEDY, **forced)
    assert first.stop_reason == "tool_use"
    [use] = first.content
    assert (use.type, use.name) == ("tool_use", "get_weather")
    assert isinstance(use.input["city"], str)
    with claude.messages.stream(model=MODEL, messages=turns, max_tokens=64, extra_body=GREEDY, **forced) as stream:
        streamed = stream.get_final_message()
    assert [(b.type, b.name, b.input) for b in streamed.content] == [("tool_use", use.name, use.input)]
    turns += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 24 C."}]},
    ]
    answer = claude.messages.create(model=MODEL, messages=turns, max_tokens=32, tools=[WEATHER], extra_body=GREEDY)
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    counted = claude.messages.count_tokens(model=MODEL, messages=turns, tools=[WEATHER])
    assert counted.input_tokens == whole_prompt(answer.usage)
