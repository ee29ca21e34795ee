"""The Anthropic Messages API's probes: requests through the official `anthropic` client.

As for the OpenAI probes (conformance_probes.py), a probe checks the parameter's effect
where that is cheap, and a parameter the server does not support must come back as a 400
that names it. Anthropic's error body has no `param`: the name is the first one quoted in
its message, as every 400 of this server quotes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anthropic
from anthropic.types import Message, Usage

from tests.e2e.conformance_probes import Probe, thinker

QUESTION = [{"role": "user", "content": "Name a colour."}]
TOOL = {
    "name": "paint",
    "description": "Paint a wall.",
    "input_schema": {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]},
}


def create(client: anthropic.Anthropic, model: str, extra: dict[str, Any] | None = None, **params: Any) -> Message:
    """At temperature 0 unless `extra` sets it; this SDK sends `extra` (temperature, top_k, thinking) only as
    extra body fields."""
    params = {"messages": QUESTION, "max_tokens": 8, **params}
    return client.messages.create(model=model, extra_body={"temperature": 0, **(extra or {})}, **params)


def text(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def whole_prompt(usage: Usage) -> int:
    """Anthropic's input_tokens leave the cache out; count_tokens counts the whole prompt."""
    return usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)


def _system(client: anthropic.Anthropic, model: str) -> None:
    plain = create(client, model)
    briefed = create(client, model, system="Answer in French.")
    assert briefed.usage.output_tokens <= 8
    assert whole_prompt(briefed.usage) != whole_prompt(plain.usage)  # the system prompt reached the model


def _stream(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, messages=QUESTION, max_tokens=8, extra_body={"temperature": 0}) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text(final) == text(create(client, model))


def _stop_sequences(client: anthropic.Anthropic, model: str) -> None:
    answer = text(create(client, model))
    cut = create(client, model, stop_sequences=[answer[2:5], "zzz"])
    assert text(cut) == answer[: answer.index(answer[2:5])]
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", answer[2:5])


def _tools(client: anthropic.Anthropic, model: str) -> None:
    answer = create(client, model, max_tokens=48, tools=[TOOL], tool_choice={"type": "any"})
    [use] = [block for block in answer.content if block.type == "tool_use"]
    assert (use.name, answer.stop_reason) == ("paint", "tool_use")
    assert isinstance(use.input, dict)


def _named_tool(client: anthropic.Anthropic, model: str) -> None:
    answer = create(client, model, max_tokens=48, tools=[TOOL], tool_choice={"type": "tool", "name": "paint"})
    assert [block.name for block in answer.content if block.type == "tool_use"] == ["paint"]


def _tool_result(client: anthropic.Anthropic, model: str) -> None:
    turns = [
        *QUESTION,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "paint", "input": {"colour": "red"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}]},
    ]
    answer = create(client, model, messages=turns, tools=[TOOL], tool_choice={"type": "none"})
    assert text(answer)  # the tool's result was read and answered in text
    assert whole_prompt(answer.usage) > whole_prompt(create(client, model).usage)


def _count_tokens(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.count_tokens(model=model, messages=QUESTION, tools=[TOOL])
    assert counted.input_tokens == whole_prompt(create(client, model, tools=[TOOL]).usage)


def _thinking(client: anthropic.Anthropic, model: str) -> None:
    budget = {"thinking": {"type": "enabled", "budget_tokens": 8}}
    answer = create(client, thinker(model), budget, max_tokens=32)
    assert [block.type for block in answer.content] == ["thinking", "text"]
    assert create(client, thinker(model), {"thinking": {"type": "disabled"}}).content[0].type == "text"


def _top_k(client: anthropic.Anthropic, model: str) -> None:
    """Anthropic's top_k (this SDK has no argument for it): 1 at temperature 1 gives the temperature-0 answer."""
    greedy = text(create(client, model))
    for _ in range(3):  # the Messages API has no seed: at random, as often
        assert text(create(client, model, {"temperature": 1.0, "top_k": 1})) == greedy


def _unsupported(extra: dict[str, Any] | None = None, **params: Any) -> Callable[[anthropic.Anthropic, str], None]:
    def probe(client: anthropic.Anthropic, model: str) -> None:
        create(client, model, extra, **params)

    return probe


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
PICTURE = [{"role": "user", "content": [IMAGE, {"type": "text", "text": "What colour is this?"}]}]

PROBES: list[Probe[anthropic.Anthropic]] = [
    Probe("/v1/messages", "system", _system, "system"),
    Probe("/v1/messages", "stream", _stream, "stream"),
    Probe("/v1/messages", "stop_sequences", _stop_sequences, "stop_sequences"),
    Probe("/v1/messages", "tools, tool_choice any", _tools, "tool"),
    Probe("/v1/messages", "tool_choice tool (named)", _named_tool, "tool"),
    Probe("/v1/messages", "tool_use and tool_result blocks", _tool_result, "messages"),
    Probe("/v1/messages", "top_k", _top_k, "top_k"),
    Probe("/v1/messages", "thinking (a reasoning model)", _thinking, "thinking"),
    Probe(
        "/v1/messages",
        "thinking (a model that does not think)",
        _unsupported({"thinking": {"type": "enabled", "budget_tokens": 4}}),
        "thinking",
    ),
    Probe("/v1/messages", "image blocks", _unsupported(messages=PICTURE), "messages[0]"),
    Probe("/v1/messages/count_tokens", "a call's input + cache tokens", _count_tokens, "model"),
]


def outcome(probe: Probe[anthropic.Anthropic], client: anthropic.Anthropic, model: str) -> str:
    """ "yes", or how it is refused: a 400 whose message first names the parameter, or a 404."""
    try:
        probe.call(client, model)
    except anthropic.NotFoundError as error:
        message = str(error.body["error"]["message"])  # type: ignore[index]
        assert "model" not in message, (probe.name, message)  # a lost model is no answer
        return "no: 404, no such endpoint"
    except anthropic.BadRequestError as error:
        message = str(error.body["error"]["message"])  # type: ignore[index]
        named = re.search(r"'([^']+)'", message)
        assert named is not None, (probe.name, message)
        assert named.group(1).startswith(probe.param), (probe.name, message)
        return f"no: 400 naming `{named.group(1)}`"
    return "yes"
