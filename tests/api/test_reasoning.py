"""A reasoning model's thinking, apart from its answer in every API, over the fake backend.

The fake thinks when its spec names reasoning markers: it writes the prompt's words in order
inside the block (as many as the thinking budget allows), closes it, then answers as always
(the words reversed). So the split, the budgets and the usage can be checked exactly here;
the real engines' side is tests/e2e/test_reasoning_real.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.api.conftest import serve_in_process
from tests.api.test_messages import anthropic_client, serve_both
from tests.conftest import fake_settings

MESSAGES = [{"role": "user", "content": "one two three"}]
THOUGHT = "user: one two three"  # the fake's chat text, thought in order
ANSWER = "three two one user:"  # and answered reversed, at temperature 0
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 12}
REASONING = {"reasoning": {"markers": ["<think>", "</think>"], "effort_budgets": {"minimal": 2}}}


def sse_payloads(text: str) -> list[dict[str, Any]]:
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


@pytest.fixture
async def client(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(fake_settings(model=REASONING, server={"data_dir": tmp_path})) as http:
        yield http


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://warmserve/v1", api_key="x", http_client=client, max_retries=0)


async def chat(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json={"model": "fake", "messages": MESSAGES, **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_chat_returns_the_thinking_apart_under_both_names_and_counts_its_tokens(client):
    answer = await chat(client, **GREEDY)
    message = answer["choices"][0]["message"]
    assert message["reasoning_content"] == message["reasoning"] == THOUGHT
    assert message["content"].startswith(ANSWER)
    assert "<think>" not in message["content"]
    assert "</think>" not in message["content"]
    usage = answer["usage"]
    # the open marker, four words and the close
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 6
    assert usage["completion_tokens"] == 12


async def test_the_stream_sends_thinking_deltas_first_and_joins_to_the_whole_answer(client):
    whole = (await chat(client, **GREEDY))["choices"][0]["message"]
    response = await client.post(
        "/v1/chat/completions",
        json={
            "model": "fake",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
            **GREEDY,
        },
    )
    deltas = [choice["delta"] for payload in sse_payloads(response.text) for choice in payload["choices"]]
    kinds = [kind for delta in deltas for kind in ("reasoning_content", "content") if delta.get(kind)]
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")
    assert "".join(d.get("reasoning_content", "") for d in deltas) == whole["reasoning_content"]
    assert "".join(d.get("reasoning", "") for d in deltas) == whole["reasoning"]
    assert "".join(d.get("content") or "" for d in deltas) == whole["content"]
    assert sse_payloads(response.text)[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 6


async def test_effort_none_and_the_template_switch_turn_thinking_off(client):
    for fields in ({"reasoning_effort": "none"}, {"chat_template_kwargs": {"enable_thinking": False}}):
        answer = await chat(client, **GREEDY, **fields)
        message = answer["choices"][0]["message"]
        assert "reasoning_content" not in message
        assert "reasoning" not in message
        assert message["content"].startswith(ANSWER)
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_an_effort_level_is_the_specs_thinking_budget(client):
    message = (await chat(client, reasoning_effort="minimal", **GREEDY))["choices"][0]["message"]
    assert message["reasoning_content"] == "user: one"  # the spec gives "minimal" 2 thinking tokens


async def test_a_json_schema_applies_to_the_answer_after_the_thinking(sdk):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    answer = await sdk.chat.completions.create(
        model="fake",
        messages=MESSAGES,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    message = answer.choices[0].message
    assert message.reasoning_content == THOUGHT  # type: ignore[attr-defined]  # an extra field of the SDK's model
    assert "a" in json.loads(message.content or "")


async def test_a_model_that_does_not_think_says_so_naming_the_parameter():
    async with serve_in_process(fake_settings()) as http:
        body = {"model": "fake", "messages": MESSAGES, "reasoning_effort": "high"}
        response = await http.post("/v1/chat/completions", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "reasoning_effort"
        assert (await http.post("/v1/chat/completions", json={**body, "reasoning_effort": "none"})).status_code == 200
        card = (await http.get("/v1/models/fake")).json()
        assert card["capabilities"]["reasoning"] is False


async def test_models_report_a_reasoning_model_and_bad_effort_values_are_400(client):
    assert (await client.get("/v1/models/fake")).json()["capabilities"]["reasoning"] is True
    response = await client.post(
        "/v1/chat/completions", json={"model": "fake", "messages": MESSAGES, "reasoning_effort": "extreme"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "reasoning_effort"


async def test_completions_leave_the_text_untouched(client):
    body = {"model": "fake", "prompt": "<think> a </think> b", "max_tokens": 4, "temperature": 0}
    answer = (await client.post("/v1/completions", json=body)).json()
    assert answer["choices"][0]["text"] == "b </think> a <think>"


async def test_responses_put_a_reasoning_item_before_the_message(sdk):
    response = await sdk.responses.create(model="fake", input="one two three", temperature=0, max_output_tokens=12)
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert message.type == "message"
    assert reasoning.content is not None
    assert reasoning.content[0].text == THOUGHT
    assert message.content[0].text.startswith(ANSWER)  # type: ignore[union-attr]
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 6
    # The output goes back as the next turn's input, reasoning item included.
    follow = await sdk.responses.create(
        model="fake",
        input=[*[item.model_dump(exclude_none=True) for item in response.output], {"role": "user", "content": "go"}],
        max_output_tokens=2,
    )
    assert follow.status == "incomplete"


async def test_responses_effort_and_its_stream_events(sdk):
    off = await sdk.responses.create(model="fake", input="one two", reasoning={"effort": "none"}, max_output_tokens=4)
    assert [item.type for item in off.output] == ["message"]
    assert off.reasoning is not None
    assert off.reasoning.effort == "none"
    kinds, thought, text = [], "", ""
    stream = await sdk.responses.create(
        model="fake", input="one two three", temperature=0, max_output_tokens=12, stream=True
    )
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.reasoning_text.delta":
            thought += event.delta
        elif event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.incomplete":  # cut off by max_output_tokens, as the fake always is
            final = event.response
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    assert thought == THOUGHT == final.output[0].content[0].text  # type: ignore[union-attr]
    assert text == final.output[1].content[0].text  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["reasoning", "message"]


@pytest.fixture
async def claude() -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with serve_both(fake_settings(model=REASONING)) as (_, http2):
        yield anthropic_client(http2)


async def test_messages_put_a_signed_thinking_block_first(claude):
    budget = {"type": "enabled", "budget_tokens": 2}
    message = await claude.messages.create(model="fake", messages=MESSAGES, max_tokens=12, thinking=budget)
    thinking, text = message.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "user: one"
    assert thinking.signature
    assert text.type == "text"
    assert "</think>" not in text.text
    off = await claude.messages.create(model="fake", messages=MESSAGES, max_tokens=4, thinking={"type": "disabled"})
    assert [block.type for block in off.content] == ["text"]
    # Earlier thinking sent back in an assistant turn is accepted.
    turns = [*MESSAGES, {"role": "assistant", "content": [block.model_dump() for block in message.content]}]
    again = await claude.messages.create(
        model="fake", messages=[*turns, {"role": "user", "content": "go"}], max_tokens=2
    )
    assert again.stop_reason == "max_tokens"


async def test_a_messages_stream_sends_thinking_deltas_and_a_signature_before_the_text(claude):
    async with claude.messages.stream(model="fake", messages=MESSAGES, max_tokens=12) as stream:
        kinds = [event.type for event in [event async for event in stream]]
        final = await stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == THOUGHT
    assert thinking.signature
    assert text.type == "text"
    assert text.text
    assert kinds.index("thinking") < kinds.index("signature") < kinds.index("text")


async def test_messages_thinking_errors_are_anthropic_400s():
    async with serve_both(fake_settings()) as (_, http2):
        claude = anthropic_client(http2)
        with pytest.raises(anthropic.BadRequestError) as caught:
            await claude.messages.create(
                model="fake", messages=MESSAGES, max_tokens=50, thinking={"type": "enabled", "budget_tokens": 10}
            )
        assert "'thinking'" in caught.value.body["error"]["message"]  # this model does not think
        with pytest.raises(anthropic.BadRequestError) as caught:
            await claude.messages.create(
                model="fake", messages=MESSAGES, max_tokens=5, thinking={"type": "enabled", "budget_tokens": 10}
            )
        assert "budget_tokens" in caught.value.body["error"]["message"]
        thought = [{"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "y"}]}]
        with pytest.raises(anthropic.BadRequestError):
            await claude.messages.create(model="fake", messages=thought, max_tokens=5)


async def test_a_required_tool_call_follows_the_thinking(sdk):
    tool = {
        "type": "function",
        "function": {"name": "paint", "parameters": {"type": "object", "properties": {"colour": {"type": "string"}}}},
    }
    answer = await sdk.chat.completions.create(
        model="fake", messages=MESSAGES, temperature=0, tools=[tool], tool_choice="required"
    )
    choice = answer.choices[0]
    assert choice.message.reasoning_content == THOUGHT  # type: ignore[attr-defined]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "paint"
    assert isinstance(json.loads(call.function.arguments), dict)
    assert not choice.message.content
