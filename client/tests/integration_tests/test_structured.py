"""LangChain's structured output and tools through the server, with SmolLM2 on bounded schemas.

The standard tests' schemas have unbounded strings, which this 135M model repeats inside until
max_tokens (see tests/standard_properties.py); these use bounded ones, as a user of a small
model would, and check that what comes back is valid.
"""

from typing import Literal

from langchain_core.messages import HumanMessage, ToolMessage
from pydantic import BaseModel, Field

from langchain_warmserve import ChatWarmServe
from tests.standard_properties import MODEL


class Flower(BaseModel):
    """A flower and its colour."""

    name: str = Field(max_length=20)
    colour: Literal["red", "yellow", "white", "blue"]
    petals: int = Field(ge=1, le=50)


def test_with_structured_output_returns_a_valid_instance():
    model = ChatWarmServe(model=MODEL, temperature=0, max_tokens=64)
    for method in ("json_schema", "function_calling"):
        flower = model.with_structured_output(Flower, method=method).invoke("Describe a rose.")
        assert isinstance(flower, Flower), method


def test_json_mode_answers_parse():
    model = ChatWarmServe(model=MODEL, temperature=0, max_tokens=64)
    answer = model.with_structured_output(method="json_mode").invoke(
        'Answer with a JSON object such as {"flower": "rose"}.'
    )
    assert isinstance(answer, dict)


def test_a_forced_tool_call_round_trip():
    def paint(colour: Literal["red", "blue"]) -> str:
        """Paint the wall in a colour."""
        return f"painted {colour}"

    model = ChatWarmServe(model=MODEL, temperature=0, max_tokens=64).bind_tools([paint], tool_choice="paint")
    question = HumanMessage("Paint the wall red.")
    call_message = model.invoke([question])
    [call] = call_message.tool_calls
    assert call["name"] == "paint"
    assert call["args"]["colour"] in ("red", "blue")
    result = ToolMessage(paint(**call["args"]), tool_call_id=call["id"])
    final = ChatWarmServe(model=MODEL, temperature=0, max_tokens=32).invoke([question, call_message, result])
    assert isinstance(final.content, str)
