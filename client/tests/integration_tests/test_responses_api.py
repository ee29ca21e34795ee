"""ChatWarmServe over the server's Responses API (`use_responses_api=True`), against the real SmolLM2."""

import functools
import operator

from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel

from langchain_warmserve import ChatWarmServe

QUESTION = "Name three colours of the rainbow."


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return functools.reduce(operator.add, chunks)


def test_invoke_and_stream_answer_as_chat_completions_do_at_temperature_zero():
    responses = ChatWarmServe(use_responses_api=True, max_tokens=24, temperature=0)
    answer = responses.invoke(QUESTION)
    streamed = merged(list(responses.stream(QUESTION)))
    chat = ChatWarmServe(max_tokens=24, temperature=0).invoke(QUESTION)
    assert answer.text == streamed.text == chat.text
    assert answer.text
    assert answer.response_metadata["id"].startswith("resp_")
    assert answer.usage_metadata is not None
    assert streamed.usage_metadata is not None
    assert chat.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == chat.usage_metadata["input_tokens"]
    assert answer.usage_metadata["output_tokens"] == streamed.usage_metadata["output_tokens"]


async def test_async_invoke_and_stream_agree():
    model = ChatWarmServe(use_responses_api=True, max_tokens=12, temperature=0)
    answer = await model.ainvoke(QUESTION)
    streamed = merged([chunk async for chunk in model.astream(QUESTION)])
    assert answer.text == streamed.text


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def test_a_forced_tool_call_and_its_result_round_trip():
    model = ChatWarmServe(use_responses_api=True, max_tokens=60, temperature=0)
    call = model.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Paris?")
    [tool_call] = call.tool_calls
    assert tool_call["name"] == "get_weather"
    assert isinstance(tool_call["args"]["city"], str)
    result = get_weather(**tool_call["args"])
    follow = [
        ("human", "What is the weather in Paris?"),
        call,
        {"role": "tool", "tool_call_id": tool_call["id"], "content": result},
    ]
    answer = model.bind_tools([get_weather], tool_choice="none").invoke(follow)
    assert answer.text
    assert not answer.tool_calls


class Colour(BaseModel):
    name: str
    hex_code: str


def test_structured_output_goes_through_text_format():
    model = ChatWarmServe(use_responses_api=True, max_tokens=60, temperature=0)
    colour = model.with_structured_output(Colour).invoke("Describe the colour red.")
    assert isinstance(colour, Colour)


def test_previous_response_id_sends_only_the_new_turn_and_the_server_remembers():
    model = ChatWarmServe(use_responses_api=True, use_previous_response_id=True, max_tokens=8, temperature=0)
    first = model.invoke(QUESTION)
    second = model.invoke([("human", QUESTION), first, ("human", "One more?")])
    whole = ChatWarmServe(use_responses_api=True, max_tokens=8, temperature=0).invoke(
        [("human", QUESTION), ("ai", first.text), ("human", "One more?")]
    )
    assert second.text == whole.text
    assert second.usage_metadata is not None
    assert whole.usage_metadata is not None
    assert second.usage_metadata["input_tokens"] == whole.usage_metadata["input_tokens"]
