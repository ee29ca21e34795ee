"""End to end: structured output and a named tool call on the transformers backend (SmolLM2 from the GGUF)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import openai
import pytest

from tests.conftest import ServerProcess, start_server, write_config
from tests.e2e.test_structured_real import WEATHER, Review, check_a_call_cut_off_by_max_tokens_shows_no_markup

pytestmark = pytest.mark.e2e
HF = "smollm2-hf"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, hf_cache_dir) -> Iterator[openai.OpenAI]:
    tmp = tmp_path_factory.mktemp("hf-structured")
    model = {"name": HF, "backend": "transformers", "threads": 2, "n_ctx": 1024, "cache_dir": str(hf_cache_dir)}
    server: ServerProcess = start_server(
        ["--config", str(write_config(tmp / "warmserve.yaml", {"models": [model]}))], tmp
    )
    yield server.openai_client(timeout=300)
    server.stop()


def test_json_schema_output_validates(client):
    answer = client.chat.completions.parse(
        model=HF,
        messages=[{"role": "user", "content": "Review this film: it was a wonderful, moving story."}],
        response_format=Review,
        temperature=0,
        max_tokens=200,
    )
    assert isinstance(answer.choices[0].message.parsed, Review)
    jsonschema.validate(json.loads(answer.choices[0].message.content), Review.model_json_schema())


def test_a_named_tool_call_has_arguments_valid_for_the_function(client):
    answer = client.chat.completions.create(
        model=HF,
        messages=[{"role": "user", "content": "What is the weather like in Rome?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=100,
    )
    assert answer.choices[0].finish_reason == "tool_calls"
    [call] = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_a_tool_call_cut_off_by_max_tokens_is_no_content(client):
    check_a_call_cut_off_by_max_tokens_shows_no_markup(client, HF)
