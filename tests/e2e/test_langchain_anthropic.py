"""End to end: LangChain's `ChatAnthropic` against /v1/messages on the real SmolLM2 GGUF.

A program written for Claude through LangChain should run on warmserve by changing
`base_url` alone: invoke, stream and a forced tool call, each through the official SDK
that ChatAnthropic wraps.
"""

from __future__ import annotations

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, convert_to_messages
from pydantic import BaseModel, Field

from tests.conftest import ServerProcess
from warmserve.config import EMBEDDED_MODEL_NAME

pytestmark = pytest.mark.e2e
PROMPT = [("system", "You are a terse assistant."), ("human", "Name three colours of the rainbow.")]


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str = Field(description="The city's name.")


@pytest.fixture(scope="module")
def server(smollm_server: ServerProcess) -> ServerProcess:
    return smollm_server


@pytest.fixture(scope="module")
def llm(server: ServerProcess) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        base_url=server.base_url,
        api_key="none",
        model=EMBEDDED_MODEL_NAME,
        max_tokens=24,
        temperature=0,
        max_retries=0,
        timeout=120,
    )


def test_invoke_and_stream_give_the_same_answer_at_temperature_0(llm: ChatAnthropic):
    invoked = llm.invoke(PROMPT)
    assert isinstance(invoked, AIMessage)
    assert isinstance(invoked.content, str)
    assert invoked.content.strip()
    chunks = list(llm.stream(PROMPT))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == invoked.content
    assert invoked.response_metadata["stop_reason"] in ("end_turn", "max_tokens")
    usage = invoked.usage_metadata
    assert usage is not None
    assert usage["output_tokens"] > 0
    # LangChain adds the cache fields back into input_tokens: the whole prompt, as count_tokens counts it.
    assert usage["input_tokens"] == llm.get_num_tokens_from_messages(convert_to_messages(PROMPT)) > 10


def test_a_forced_tool_call_names_the_tool_with_arguments_in_its_schema(llm: ChatAnthropic):
    forced = llm.bind_tools([GetWeather], tool_choice="GetWeather")
    answer = forced.invoke("What is the weather in Paris?", max_tokens=64)
    assert isinstance(answer, AIMessage)
    [call] = answer.tool_calls
    assert call["name"] == "GetWeather"
    assert GetWeather.model_validate(call["args"]).city
    assert call["id"]
    assert answer.response_metadata["stop_reason"] == "tool_use"
    streamed = None
    for chunk in forced.stream("What is the weather in Paris?", max_tokens=64):
        streamed = chunk if streamed is None else streamed + chunk
    assert isinstance(streamed, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("GetWeather", call["args"])]
