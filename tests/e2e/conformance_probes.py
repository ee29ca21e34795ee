"""One probe per OpenAI parameter or endpoint: a request through the official `openai` client.

A probe sends the parameter with a value that changes the answer and checks the change
where that is cheap, so "supported" means honoured, not merely accepted. A parameter the
server does not support must come back as a 400 that names it; anything else fails the run.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import openai
from pydantic import BaseModel

QUESTION = [{"role": "user", "content": "Name a colour."}]
Client = TypeVar("Client")  # the official client of the probe's API


@dataclass(frozen=True)
class Probe(Generic[Client]):
    group: str  # the endpoint
    name: str  # the parameter (or the endpoint itself)
    call: Callable[[Client, str], None]  # raises AssertionError when a "supported" answer is wrong
    param: str  # how the parameter a 400 names must begin when the server rejects it


def chat(client: openai.OpenAI, model: str, **params: object) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=model, messages=params.pop("messages", QUESTION), **{"max_tokens": 8, "temperature": 0, **params}
    )  # type: ignore[call-overload]


def complete(client: openai.OpenAI, model: str, **params: object) -> openai.types.Completion:
    return client.completions.create(model=model, **{"prompt": "Colours:", "max_tokens": 8, "temperature": 0, **params})  # type: ignore[call-overload]


def _n(client: openai.OpenAI, model: str) -> None:
    answer = chat(client, model, n=3, temperature=1.0, seed=7)
    assert [c.index for c in answer.choices] == [0, 1, 2]


def _stream(client: openai.OpenAI, model: str) -> None:
    chunks = list(chat(client, model, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == chat(client, model).choices[0].message.content
    )


def _stop(client: openai.OpenAI, model: str) -> None:
    text = chat(client, model).choices[0].message.content or ""
    cut = chat(client, model, stop=[text[2:5], "zzz", "yyy", "xxx"])
    assert cut.choices[0].message.content == text[: text.index(text[2:5])]


def _seed(client: openai.OpenAI, model: str) -> None:
    first, again = (chat(client, model, temperature=1.0, seed=42).choices[0].message.content for _ in range(2))
    assert first == again


def _logprobs(client: openai.OpenAI, model: str) -> None:
    answer = chat(client, model, logprobs=True, top_logprobs=2)
    content = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content
    assert len(content[0].top_logprobs) == 2


def _logit_bias(client: openai.OpenAI, model: str) -> None:
    [token] = client.post("/tokenize", cast_to=object, body={"model": model, "prompt": " blue"})["tokens"]  # type: ignore[index]
    assert complete(client, model, max_tokens=2, logit_bias={str(token): 100}).choices[0].text == " blue blue"


def _json_object(client: openai.OpenAI, model: str) -> None:
    ask = [{"role": "user", "content": 'Answer with a JSON object such as {"colour": "red"}.'}]
    answer = chat(client, model, messages=ask, max_tokens=96, response_format={"type": "json_object"})
    json.loads(answer.choices[0].message.content or "")


class Colour(BaseModel):
    name: str
    warm: bool


def _json_schema(client: openai.OpenAI, model: str) -> None:
    parsed = client.chat.completions.parse(
        model=model, messages=QUESTION, response_format=Colour, max_tokens=48, temperature=0
    )
    assert isinstance(parsed.choices[0].message.parsed, Colour)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "paint",
            "description": "Paint a wall.",
            "parameters": {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]},
        },
    }
]


def _tools(client: openai.OpenAI, model: str) -> None:
    answer = chat(client, model, max_tokens=48, tools=TOOLS, tool_choice="required")
    [call] = answer.choices[0].message.tool_calls or []
    assert call.function.name == "paint"
    json.loads(call.function.arguments)


def _named_tool(client: openai.OpenAI, model: str) -> None:
    choice = {"type": "function", "function": {"name": "paint"}}
    answer = chat(client, model, max_tokens=48, tools=TOOLS, tool_choice=choice)
    assert (answer.choices[0].message.tool_calls or [])[0].function.name == "paint"


def _tool_message(client: openai.OpenAI, model: str) -> None:
    messages = [
        *QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "paint", "arguments": '{"colour":"red"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]
    answer = chat(client, model, messages=messages, tools=TOOLS, tool_choice="none")
    assert answer.choices[0].message.content  # the tool's result was read and answered in text
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > chat(client, model, messages=QUESTION).usage.prompt_tokens  # type: ignore[union-attr]


def _echo(client: openai.OpenAI, model: str) -> None:
    assert complete(client, model, echo=True).choices[0].text.startswith("Colours:")


def _suffix(client: openai.OpenAI, model: str) -> None:
    with_suffix = complete(client, model, suffix=" are nice.").usage
    without = complete(client, model).usage
    assert with_suffix is not None
    assert without is not None
    assert with_suffix.prompt_tokens > without.prompt_tokens  # the suffix reached the model's prompt


def _completion_logprobs(client: openai.OpenAI, model: str) -> None:
    logprobs = complete(client, model, logprobs=2).choices[0].logprobs
    assert logprobs is not None
    assert len(logprobs.tokens or []) == 8


def _token_prompt(client: openai.OpenAI, model: str) -> None:
    complete(client, model, prompt=[1, 2, 3])


def _best_of(client: openai.OpenAI, model: str) -> None:
    complete(client, model, best_of=2)


def _embeddings(client: openai.OpenAI, model: str) -> None:
    floats = client.embeddings.create(model=model, input=["red", "blue"]).data
    assert len(floats) == 2
    assert len(floats[0].embedding) > 0
    raw = client.embeddings.with_raw_response.create(model=model, input="red", encoding_format="base64")
    assert base64.b64decode(json.loads(raw.text)["data"][0]["embedding"])


OPEN = [{"role": "user", "content": "Write ten words about colours."}]  # many likely answers
REPETITIVE = "cat cat cat cat cat cat"  # SmolLM2 goes on repeating it when greedy
SEEDS = (1, 2, 3)


def _said(answer: openai.types.chat.ChatCompletion) -> str:
    return answer.choices[0].message.content or ""


def _greedy_at_temperature_1(**extension: object) -> Callable[[openai.OpenAI, str], None]:
    """The extension at temperature 1 gives the temperature-0 answer for every seed, where plain sampling does not."""

    def probe(client: openai.OpenAI, model: str) -> None:
        greedy = _said(chat(client, model, messages=OPEN, max_tokens=12))
        sampled = [_said(chat(client, model, messages=OPEN, max_tokens=12, temperature=1.0, seed=s)) for s in SEEDS]
        assert any(answer != greedy for answer in sampled)
        for seed in SEEDS:
            answer = chat(client, model, messages=OPEN, max_tokens=12, temperature=1.0, seed=seed, extra_body=extension)
            assert _said(answer) == greedy

    return probe


def _typical_p(client: openai.OpenAI, model: str) -> None:
    def sample(seed: int, **extension: object) -> str:
        answer = chat(client, model, messages=OPEN, max_tokens=12, temperature=1.0, seed=seed, extra_body=extension)
        return _said(answer)

    typical = [sample(seed, typical_p=0.2) for seed in SEEDS]
    assert typical != [sample(seed) for seed in SEEDS]
    assert sample(SEEDS[0], typical_p=0.2) == typical[0]


def _xtc(client: openai.OpenAI, model: str) -> None:
    """XTC with probability 1 never draws the likeliest of two or more tokens above its threshold."""
    threshold, checked = 0.1, 0
    for seed in SEEDS:
        answer = chat(
            client, model, messages=OPEN, max_tokens=12, temperature=1.0, seed=seed, logprobs=True, top_logprobs=20,
            extra_body={"xtc_probability": 1.0, "xtc_threshold": threshold},
        )  # fmt: skip
        for token in answer.choices[0].logprobs.content or []:  # type: ignore[union-attr]
            probs = [math.exp(top.logprob) for top in token.top_logprobs]
            above = [p for p in probs if p > threshold]
            if len(above) >= 2 and not any(abs(p - threshold) < 0.01 for p in probs):
                assert math.exp(token.logprob) <= min(above) * 1.001
                checked += 1
    assert checked > 0


def _longest_run(text: str, word: str = "cat") -> int:
    best = run = 0
    for item in text.split():
        run = run + 1 if item == word else 0
        best = max(best, run)
    return best


def _breaks_repeats(**extension: object) -> Callable[[openai.OpenAI, str], None]:
    """A repetitive greedy completion repeats less with the extension."""

    def probe(client: openai.OpenAI, model: str) -> None:
        greedy = complete(client, model, prompt=REPETITIVE, max_tokens=24).choices[0].text
        penalised = complete(client, model, prompt=REPETITIVE, max_tokens=24, extra_body=extension).choices[0].text
        assert _longest_run(penalised) < _longest_run(greedy)

    return probe


def _repetition_penalty(client: openai.OpenAI, model: str) -> None:
    _breaks_repeats(repetition_penalty=1.3)(client, model)
    windowless = {"repetition_penalty": 1.3, "repeat_last_n": 0}
    assert (
        complete(client, model, prompt=REPETITIVE, max_tokens=24, extra_body=windowless).choices[0].text
        == complete(client, model, prompt=REPETITIVE, max_tokens=24).choices[0].text
    )


def _unsupported(**params: object) -> Callable[[openai.OpenAI, str], None]:
    def probe(client: openai.OpenAI, model: str) -> None:
        chat(client, model, **params)

    return probe


def _models(client: openai.OpenAI, model: str) -> None:
    assert client.models.retrieve(model).id == model


def _tokenize(client: openai.OpenAI, model: str) -> None:
    answer = client.post("/tokenize", cast_to=object, body={"model": model, "messages": QUESTION})
    assert answer["count"] > 0  # type: ignore[index]


def _detokenize(client: openai.OpenAI, model: str) -> None:
    tokens = client.post("/tokenize", cast_to=object, body={"model": model, "prompt": "red"})["tokens"]  # type: ignore[index]
    assert client.post("/detokenize", cast_to=object, body={"model": model, "tokens": tokens})["text"] == "red"  # type: ignore[index]


def respond(client: openai.OpenAI, model: str, **params: object) -> openai.types.responses.Response:
    return client.responses.create(
        model=model, input=params.pop("input", QUESTION), **{"max_output_tokens": 8, "temperature": 0, **params}
    )  # type: ignore[call-overload]


RESPONSE_TOOLS = [{"type": "function", **TOOLS[0]["function"]}]  # type: ignore[dict-item]


def _response_input(client: openai.OpenAI, model: str) -> None:
    answer = respond(client, model, instructions="Be brief.", input="Name a colour.")
    expected = chat(client, model, messages=[{"role": "system", "content": "Be brief."}, *QUESTION])
    assert answer.output_text == expected.choices[0].message.content
    assert answer.usage is not None
    assert expected.usage is not None
    assert answer.usage.input_tokens == expected.usage.prompt_tokens


def _response_stream(client: openai.OpenAI, model: str) -> None:
    events = list(respond(client, model, stream=True))
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(numbers)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == respond(client, model).output_text == events[-1].response.output_text  # type: ignore[union-attr]


def _response_max_output_tokens(client: openai.OpenAI, model: str) -> None:
    answer = respond(client, model, max_output_tokens=2)
    assert (answer.status, answer.incomplete_details and answer.incomplete_details.reason) == (
        "incomplete",
        "max_output_tokens",
    )


def _response_json_schema(client: openai.OpenAI, model: str) -> None:
    answer = client.responses.parse(
        model=model,
        input=QUESTION,
        text_format=Colour,
        max_output_tokens=60,
        temperature=0,  # type: ignore[arg-type]
    )
    assert isinstance(answer.output_parsed, Colour)


def _response_tools(client: openai.OpenAI, model: str) -> None:
    answer = respond(client, model, max_output_tokens=48, tools=RESPONSE_TOOLS, tool_choice="required")
    [call] = [item for item in answer.output if item.type == "function_call"]
    assert call.name == "paint"
    json.loads(call.arguments)


def _response_named_tool(client: openai.OpenAI, model: str) -> None:
    choice = {"type": "function", "name": "paint"}
    answer = respond(client, model, max_output_tokens=48, tools=RESPONSE_TOOLS, tool_choice=choice)
    assert [item.type for item in answer.output] == ["function_call"]


def _response_call_output(client: openai.OpenAI, model: str) -> None:
    items = [
        *QUESTION,
        {"type": "function_call", "call_id": "call_1", "name": "paint", "arguments": '{"colour":"red"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "done"},
    ]
    answer = respond(client, model, input=items, tools=RESPONSE_TOOLS, tool_choice="none")
    assert answer.output_text  # the function's output was read and answered in text
    assert answer.usage is not None
    assert answer.usage.input_tokens > respond(client, model).usage.input_tokens  # type: ignore[union-attr]


def _response_store(client: openai.OpenAI, model: str) -> None:
    first = respond(client, model)
    assert client.responses.retrieve(first.id).output_text == first.output_text
    second = respond(client, model, input="Another.", previous_response_id=first.id)
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [item.type for item in items] == ["message"] * 3
    client.responses.delete(first.id)
    try:
        client.responses.retrieve(first.id)
    except openai.NotFoundError:
        return
    raise AssertionError("a deleted response was still retrieved")


def _response_input_tokens(client: openai.OpenAI, model: str) -> None:
    counted = client.responses.input_tokens.count(model=model, input=QUESTION)  # type: ignore[arg-type]
    assert counted.input_tokens == respond(client, model).usage.input_tokens  # type: ignore[union-attr]


def _response_top_k(client: openai.OpenAI, model: str) -> None:
    greedy = respond(client, model, input=OPEN, max_output_tokens=12).output_text
    for _ in SEEDS:  # the Responses API has no seed: at random, as often
        sampled = respond(client, model, input=OPEN, max_output_tokens=12, temperature=1.0, extra_body={"top_k": 1})
        assert sampled.output_text == greedy


def _response_unsupported(**params: object) -> Callable[[openai.OpenAI, str], None]:
    def probe(client: openai.OpenAI, model: str) -> None:
        respond(client, model, **params)

    return probe


def thinker(model: str) -> str:
    """The same model made to think (tests/e2e/thinking_model.py), served beside it for the reasoning probes."""
    return f"{model}-thinking"


def _reasoning_effort(client: openai.OpenAI, model: str) -> None:
    thought = chat(client, thinker(model), max_tokens=32, reasoning_effort="minimal")
    assert (thought.choices[0].message.model_extra or {}).get("reasoning_content")
    assert thought.usage is not None
    assert thought.usage.completion_tokens_details is not None
    assert thought.usage.completion_tokens_details.reasoning_tokens > 0
    plain = chat(client, thinker(model), max_tokens=32, reasoning_effort="none")
    assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})


def _reasoning_stream(client: openai.OpenAI, model: str) -> None:
    thought = chat(client, thinker(model), max_tokens=32, reasoning_effort="minimal")
    chunks = list(chat(client, thinker(model), max_tokens=32, reasoning_effort="minimal", stream=True))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    streamed = "".join((delta.model_extra or {}).get("reasoning_content", "") for delta in deltas)
    assert streamed == (thought.choices[0].message.model_extra or {})["reasoning_content"]
    assert "".join(delta.content or "" for delta in deltas) == thought.choices[0].message.content


def _chat_template_kwargs(client: openai.OpenAI, model: str) -> None:
    off = chat(client, thinker(model), extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert "reasoning_content" not in (off.choices[0].message.model_extra or {})
    assert "reasoning_content" in (chat(client, thinker(model)).choices[0].message.model_extra or {})


def _response_reasoning(client: openai.OpenAI, model: str) -> None:
    answer = respond(client, thinker(model), max_output_tokens=32, reasoning={"effort": "minimal"})
    assert [item.type for item in answer.output] == ["reasoning", "message"]
    assert answer.usage is not None
    assert answer.usage.output_tokens_details.reasoning_tokens > 0


PROBES: list[Probe[openai.OpenAI]] = [
    Probe("/v1/models", "retrieve", _models, "model"),
    Probe("/v1/chat/completions", "n", _n, "n"),
    Probe("/v1/chat/completions", "stream, stream_options", _stream, "stream"),
    Probe("/v1/chat/completions", "stop (4 strings)", _stop, "stop"),
    Probe("/v1/chat/completions", "seed", _seed, "seed"),
    Probe("/v1/chat/completions", "logprobs, top_logprobs", _logprobs, "logprobs"),
    Probe("/v1/chat/completions", "logit_bias", _logit_bias, "logit_bias"),
    Probe("/v1/chat/completions", "response_format json_object", _json_object, "response_format"),
    Probe("/v1/chat/completions", "response_format json_schema (parse)", _json_schema, "response_format"),
    Probe("/v1/chat/completions", "tools, tool_choice required", _tools, "tool"),
    Probe("/v1/chat/completions", "tool_choice named function", _named_tool, "tool"),
    Probe("/v1/chat/completions", "tool role messages", _tool_message, "messages"),
    Probe("/v1/chat/completions", "top_k (extension)", _greedy_at_temperature_1(top_k=1), "top_k"),
    Probe("/v1/chat/completions", "min_p (extension)", _greedy_at_temperature_1(min_p=1.0), "min_p"),
    Probe("/v1/chat/completions", "typical_p (extension)", _typical_p, "typical_p"),
    Probe("/v1/chat/completions", "XTC: xtc_probability, xtc_threshold (extension)", _xtc, "xtc_probability"),
    Probe(
        "/v1/chat/completions",
        "Mirostat: mirostat, mirostat_tau, mirostat_eta (extension)",
        _greedy_at_temperature_1(mirostat=2, mirostat_tau=0.01),
        "mirostat",
    ),
    Probe("/v1/chat/completions", "modalities (audio)", _unsupported(modalities=["text", "audio"]), "modalities"),
    Probe(
        "/v1/chat/completions", "prediction", _unsupported(prediction={"type": "content", "content": "x"}), "prediction"
    ),
    Probe("/v1/chat/completions", "reasoning_effort (a reasoning model)", _reasoning_effort, "reasoning_effort"),
    Probe("/v1/chat/completions", "reasoning_content streamed", _reasoning_stream, "reasoning_effort"),
    Probe(
        "/v1/chat/completions",
        "reasoning_effort (a model that does not think)",
        _unsupported(reasoning_effort="low"),
        "reasoning_effort",
    ),
    Probe("/v1/chat/completions", "chat_template_kwargs", _chat_template_kwargs, "chat_template_kwargs"),
    Probe("/v1/chat/completions", "web_search_options", _unsupported(web_search_options={}), "web_search_options"),
    Probe("/v1/completions", "logprobs", _completion_logprobs, "logprobs"),
    Probe("/v1/completions", "echo", _echo, "echo"),
    Probe("/v1/completions", "suffix", _suffix, "suffix"),
    Probe("/v1/completions", "best_of", _best_of, "best_of"),
    Probe("/v1/completions", "prompt as token ids", _token_prompt, "prompt"),
    Probe(
        "/v1/completions", "repetition_penalty, repeat_last_n (extension)", _repetition_penalty, "repetition_penalty"
    ),
    Probe("/v1/completions", "presence_penalty", _breaks_repeats(presence_penalty=2.0), "presence_penalty"),
    Probe("/v1/completions", "frequency_penalty", _breaks_repeats(frequency_penalty=2.0), "frequency_penalty"),
    Probe("/v1/completions", "DRY: dry_* (extension)", _breaks_repeats(dry_multiplier=0.8), "dry_multiplier"),
    Probe("/v1/embeddings", "input, encoding_format", _embeddings, "model"),
    Probe("/v1/tokenize", "chat token count", _tokenize, "model"),
    Probe("/v1/detokenize", "tokens", _detokenize, "tokens"),
    Probe("/v1/responses", "input items, instructions", _response_input, "input"),
    Probe("/v1/responses", "stream", _response_stream, "stream"),
    Probe("/v1/responses", "max_output_tokens (incomplete)", _response_max_output_tokens, "max_output_tokens"),
    Probe("/v1/responses", "text.format json_schema (parse)", _response_json_schema, "text"),
    Probe("/v1/responses", "tools, tool_choice required", _response_tools, "tool"),
    Probe("/v1/responses", "tool_choice named function", _response_named_tool, "tool"),
    Probe("/v1/responses", "function_call_output items", _response_call_output, "input"),
    Probe("/v1/responses", "store, previous_response_id, retrieve, delete", _response_store, "previous_response_id"),
    Probe("/v1/responses", "top_k (extension)", _response_top_k, "top_k"),
    Probe("/v1/responses/input_tokens", "input", _response_input_tokens, "input"),
    Probe("/v1/responses", "background", _response_unsupported(background=True), "background"),
    Probe("/v1/responses", "tools web_search", _response_unsupported(tools=[{"type": "web_search"}]), "tools"),
    Probe("/v1/responses", "reasoning.effort (a reasoning model)", _response_reasoning, "reasoning"),
    Probe(
        "/v1/responses",
        "reasoning.effort (a model that does not think)",
        _response_unsupported(reasoning={"effort": "low"}),
        "reasoning",
    ),
]


def outcome(probe: Probe[openai.OpenAI], client: openai.OpenAI, model: str) -> str:
    """ "yes", or how it is refused: a 400 naming the parameter (another name fails the probe), or a 404."""
    try:
        probe.call(client, model)
    except openai.NotFoundError as error:
        refusal, body = "404", error.body
    except openai.BadRequestError as error:
        refusal, body = "400", error.body
    else:
        return "yes"
    details = body if isinstance(body, dict) else {}
    if refusal == "404":
        assert "model" not in str(details.get("message", "")), (probe.name, details)  # a lost model is no answer
        return "no: 404, no such endpoint"
    named = str(details.get("param"))
    assert named.startswith(probe.param), (probe.name, details)
    return f"no: 400 naming `{named}`"
