"""A reasoning model on both real engines (tests/e2e/thinking_model.py): thinking apart from the
answer, budgets the engine enforces by closing the block, a grammar that waits for the answer,
a resumed request that goes on where its thinking was cut, and the template's own errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import openai
import pytest

from tests.conftest import start_server, write_config
from tests.e2e.test_engine_resume import resume, run, shown
from tests.e2e.thinking_model import BUDGETS, thinking_spec
from warmserve.api.grammar import schema_grammar
from warmserve.backends.base import Engine
from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest
from warmserve.generation import (
    ChatMessage,
    Drawn,
    Finished,
    GenerationRequest,
    ReasoningRequest,
    SamplingParams,
    Started,
)
from warmserve.reasoning import split_whole
from warmserve.testing import ServerProcess

pytestmark = pytest.mark.e2e

SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}
STORY = "Write a long story about a dragon who loves books."
CAPITAL = "What is the capital of France? Answer in JSON."


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reasoning")


@pytest.fixture(scope="module", params=["llama_cpp", "transformers"])
def engine(request: pytest.FixtureRequest, template_dir: Path, hf_cache_dir: Path) -> Iterator[Engine]:
    common = thinking_spec(template_dir, threads=1, n_ctx=512, slots=1)
    if request.param == "llama_cpp":
        from warmserve.backends.llama.engine import LlamaCppEngine

        eng: Engine = LlamaCppEngine(ModelSpec(**common))
    else:
        from warmserve.backends.hf.engine import TransformersEngine

        eng = TransformersEngine(ModelSpec(backend="transformers", cache_dir=str(hf_cache_dir), **common), 0)
    yield eng
    eng.close()


def ask(question: str, effort: str | None, max_tokens: int = 40, **fields: object) -> GenerationRequest:
    reasoning = None if effort is None else ReasoningRequest(BUDGETS.get(effort, 0), effort)
    sampling = SamplingParams(temperature=0, max_tokens=max_tokens)
    return GenerationRequest(
        messages=(ChatMessage("user", question),), sampling=sampling, reasoning=reasoning, **fields
    )  # type: ignore[arg-type]


def answer(engine: Engine, request: GenerationRequest) -> tuple[str | None, str, Finished]:
    events = run(engine, request)
    started, finished = events[0], events[-1]
    assert isinstance(started, Started)
    assert isinstance(finished, Finished)
    thinking, text = split_whole(shown(events)[0], started.reasoning)
    return thinking, text, finished


def test_the_template_makes_a_reasoning_model(engine):
    assert engine.facts.reasoning


def test_a_spent_budget_closes_the_block_and_the_model_answers_after_it(engine):
    thinking, text, finished = answer(engine, ask(STORY, "minimal"))
    assert thinking
    assert text
    assert "<think>" not in text
    # the budget, then the close the engine wrote ("\n</think>", a few tokens; its trailing newlines are answer)
    assert BUDGETS["minimal"] < finished.reasoning_tokens <= BUDGETS["minimal"] + 6
    assert finished.completion_tokens == 40


def test_effort_none_and_the_template_switch_answer_without_thinking(engine):
    for request in (ask(STORY, "none"), ask(STORY, None, template_kwargs='{"enable_thinking": false}')):
        thinking, text, finished = answer(engine, request)
        assert thinking is None
        assert text
        assert finished.reasoning_tokens == 0


def test_a_json_schema_applies_after_the_thinking(engine):
    request = ask(CAPITAL, "minimal", max_tokens=80, constraint=schema_grammar(SCHEMA, "response_format"))
    thinking, text, finished = answer(engine, request)
    assert thinking
    assert set(json.loads(text)) == {"city"}
    assert finished.finish_reason == "stop"
    assert 0 < finished.reasoning_tokens < finished.completion_tokens


def test_a_template_that_fails_is_the_requests_error_with_the_templates_message(engine):
    with pytest.raises(InvalidRequest, match="UndefinedError"):
        engine.add("bad", ask(CAPITAL, None, template_kwargs='{"explode": 1}'))
    assert engine.running == 0


def test_a_request_cut_inside_its_thinking_or_its_forced_close_resumes_to_the_same_answer(engine):
    request = ask(CAPITAL, "minimal", max_tokens=60, constraint=schema_grammar(SCHEMA, "response_format"))
    whole = run(engine, request)
    drawn_at = [i for i, e in enumerate(whole) if isinstance(e, Drawn)]
    for cut in (drawn_at[3] + 1, drawn_at[BUDGETS["minimal"] + 1] + 1):  # thinking; the close being forced
        after = resume(engine, request, whole[:cut])
        assert shown([*whole[:cut], *after]) == shown(whole)
        end, resumed_end = whole[-1], after[-1]
        assert isinstance(end, Finished)
        assert isinstance(resumed_end, Finished)
        # reasoning_tokens too; what each worker drafted (speculative decoding) is its own
        own = {"cached_tokens": 0, "drafted_tokens": 0, "accepted_tokens": 0}
        assert replace(resumed_end, **own) == replace(end, **own)


@pytest.fixture(scope="module")
def server(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("reasoning-server")
    model = thinking_spec(template_dir, name="thinker", workers=1, threads=1, n_ctx=512)
    config = write_config(tmp / "warmserve.yaml", {"models": [model]})
    server = start_server(["--config", str(config)], tmp)
    yield server
    server.stop()


def test_the_openai_client_gets_reasoning_content_whole_and_streamed(server):
    client = server.openai_client()
    messages = [{"role": "user", "content": STORY}]
    whole = client.chat.completions.create(
        model="thinker", messages=messages, temperature=0, max_tokens=30, reasoning_effort="minimal"
    )
    message = whole.choices[0].message
    thinking = message.model_extra["reasoning_content"]  # type: ignore[index]
    assert thinking
    assert thinking == message.model_extra["reasoning"]  # type: ignore[index]
    assert whole.usage is not None
    assert whole.usage.completion_tokens_details is not None
    assert whole.usage.completion_tokens_details.reasoning_tokens > BUDGETS["minimal"]
    stream = client.chat.completions.create(
        model="thinker", messages=messages, temperature=0, max_tokens=30, reasoning_effort="minimal", stream=True
    )
    deltas = [chunk.choices[0].delta for chunk in stream if chunk.choices]
    streamed = "".join((d.model_extra or {}).get("reasoning_content", "") for d in deltas)
    assert (streamed, "".join(d.content or "" for d in deltas)) == (thinking, message.content)
    off = client.chat.completions.create(
        model="thinker",
        messages=messages,
        max_tokens=5,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert "reasoning_content" not in (off.choices[0].message.model_extra or {})
    with pytest.raises(openai.BadRequestError, match="UndefinedError") as caught:
        client.chat.completions.create(
            model="thinker", messages=messages, extra_body={"chat_template_kwargs": {"explode": 1}}
        )
    assert caught.value.body["param"] == "messages"  # type: ignore[index]


def test_a_required_tool_call_comes_after_the_thinking(server):
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}},
        },
    }
    answer = server.openai_client().chat.completions.create(
        model="thinker",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        temperature=0,
        max_tokens=80,
        reasoning_effort="minimal",
        tools=[tool],
        tool_choice="required",
    )
    choice = answer.choices[0]
    assert (choice.message.model_extra or {}).get("reasoning_content")
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(call.function.arguments), dict)  # type: ignore[union-attr]
