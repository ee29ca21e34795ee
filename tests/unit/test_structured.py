"""Grammars from schemas and tools, the output plan per tool_choice, tool-call parsing and prompts."""

import json

import jsonschema
import pytest

from warmserve.api import grammar
from warmserve.api.structured import output_plan
from warmserve.api.tool_calls import ToolCallParser, split_output
from warmserve.backends.fake.structured import FakeConstrained
from warmserve.backends.tool_prompt import template_inputs
from warmserve.errors import InvalidRequest
from warmserve.generation import ChatMessage, Constraint, ToolCallData
from warmserve.protocol import ChatCompletionRequest, ToolCall

NESTED = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["city", "zip"],
        },
    },
    "required": ["name", "address"],
}
ENUMS = {
    "type": "object",
    "properties": {"colour": {"enum": ["red", "green"]}, "size": {"type": "string", "enum": ["S", "M", "L"]}},
    "required": ["colour", "size"],
    "additionalProperties": False,
}
ARRAYS = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 2, "maxItems": 4},
        "scores": {"type": "array", "items": {"type": "number", "minimum": 1}},
        "ok": {"type": "boolean"},
    },
    "required": ["tags", "ok"],
}
REFS = {
    "$defs": {"Item": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1}},
    "required": ["items"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ADD = {"type": "function", "function": {"name": "add"}}


def chat(**fields):
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def fake_output(constraint: Constraint, words: tuple[str, ...] = ("hello", " world"), max_tokens: int = 500) -> str:
    """What the fake engine writes under `constraint`, its own words being `words` over and over."""
    fake, out = FakeConstrained(constraint), b""
    for i in range(max_tokens):
        piece = fake.next_piece(words[i % len(words)].encode())
        if piece is None:
            return out.decode()
        out += piece
    return out.decode()


@pytest.mark.parametrize("schema", [NESTED, ENUMS, ARRAYS, REFS, {"type": "object"}])
def test_a_schema_compiles_and_its_grammar_yields_valid_instances(schema):
    text = fake_output(grammar.schema_grammar(schema, "response_format"))
    assert len(text) < 200
    jsonschema.validate(json.loads(text), schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strin"},
        {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
        {"$ref": "#/$defs/missing"},
        {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["y"], "additionalProperties": False},
    ],
)
def test_a_schema_the_grammar_cannot_honour_is_invalid_request_naming_the_parameter(schema):
    with pytest.raises(InvalidRequest) as caught:
        grammar.schema_grammar(schema, "response_format")
    assert caught.value.param == "response_format"


def test_without_tools_there_is_no_plan_unless_response_format_asks_for_json():
    assert output_plan(chat()).constraint is None
    assert output_plan(chat(response_format={"type": "text"})).constraint is None
    plan = output_plan(chat(response_format={"type": "json_object"}))
    assert plan.constraint is not None
    assert plan.constraint.param == "response_format"
    assert plan.tool_names == frozenset()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        (
            {"tools": [ADD, {"type": "function", "function": {"name": "f", "parameters": {"type": "strin"}}}]},
            "tools[1].function.parameters",
        ),
        (
            {"tools": [ADD], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}},
            "response_format.json_schema.schema",
        ),
        (
            {
                "tools": [ADD],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 1}}},
            },
            "response_format",
        ),
    ],
)
def test_inconsistent_tool_requests_are_invalid_requests_naming_the_parameter(fields, param):
    with pytest.raises((InvalidRequest, ValueError)) as caught:
        output_plan(chat(**fields))
    if isinstance(caught.value, InvalidRequest):
        assert caught.value.param == param
    else:  # a pydantic validation error: the route names the same parameter
        assert param.split(".")[-1] in str(caught.value)


def test_tool_choice_none_leaves_tools_out_and_parses_nothing():
    plan = output_plan(chat(tools=[WEATHER], tool_choice="none"))
    assert (plan.tools_json, plan.constraint, plan.tool_names) == (None, None, frozenset())


def test_a_named_tool_choice_forces_exactly_one_call_of_that_function():
    plan = output_plan(chat(tools=[WEATHER, ADD], tool_choice={"type": "function", "function": {"name": "add"}}))
    assert plan.tool_names == frozenset({"add"})
    assert plan.constraint is not None
    content, calls = split_output(fake_output(plan.constraint), plan.tool_names)
    assert content is None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("add", {})]


def test_required_forces_a_call_with_arguments_valid_for_its_function():
    plan = output_plan(chat(tools=[WEATHER], tool_choice="required"))
    assert plan.constraint is not None
    assert json.loads(plan.tools_json or "")[0]["function"]["name"] == "get_weather"
    _, [call] = split_output(fake_output(plan.constraint), plan.tool_names)
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_auto_allows_a_plain_answer_or_a_call():
    plan = output_plan(chat(tools=[WEATHER]))
    assert plan.constraint is not None
    assert split_output(fake_output(plan.constraint, max_tokens=2), plan.tool_names) == ("hello world", [])
    _, [call] = split_output(fake_output(plan.constraint, ("<tool_call>",)), plan.tool_names)
    assert call.function.name == "get_weather"


def test_auto_with_a_json_response_format_answers_in_that_json_or_calls():
    plan = output_plan(
        chat(tools=[WEATHER], response_format={"type": "json_schema", "json_schema": {"name": "e", "schema": ENUMS}})
    )
    assert plan.constraint is not None
    content, calls = split_output(fake_output(plan.constraint), plan.tool_names)
    assert calls == []
    jsonschema.validate(json.loads(content or ""), ENUMS)


def test_the_parser_streams_content_and_holds_back_only_a_possible_tag():
    parser = ToolCallParser(frozenset({"f"}))
    assert parser.feed("Hello <to") == ["Hello "]
    assert parser.feed("ol") == []
    assert parser.feed("s are fun") == ["<tools are fun"]
    assert parser.feed('<tool_call>{"name": "f", "argu') == []
    [call] = parser.feed('ments": {"a": 1}}</tool_call>')
    assert isinstance(call, ToolCall)
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == ("function", "f", {"a": 1})
    assert call.id.startswith("call_")
    assert parser.finish() == []


def test_calls_of_unknown_functions_or_broken_json_stay_content():
    text = '<tool_call>{"name": "g", "arguments": {}}</tool_call> and <tool_call>{oops</tool_call>'
    assert split_output(text, frozenset({"f"})) == (text, [])


def test_several_calls_and_an_unclosed_last_call_are_all_parsed():
    text = '<tool_call>{"name":"f","arguments":{}}</tool_call>\n<tool_call>{"name":"f","arguments":{"x":"é"}}'
    content, calls = split_output(text, frozenset({"f"}))
    assert content is None
    assert [c.function.arguments for c in calls] == ["{}", '{"x": "é"}']
    assert len({c.id for c in calls}) == 2


@pytest.mark.parametrize(
    "cut", ['<tool_call>{"name": "f", "argu', "<tool_call>", '<tool_call>{"name": "g", "arguments": {}}']
)
def test_a_call_cut_off_before_its_end_is_no_content_whole_or_streamed(cut):
    assert split_output("Sure. " + cut, frozenset({"f"})) == ("Sure. ", [])
    assert split_output(cut, frozenset({"f"})) == ("", [])
    parser = ToolCallParser(frozenset({"f"}))
    pieces = parser.feed("Sure. " + cut) + parser.finish()
    assert pieces == ["Sure. "]


CONVERSATION = (
    ChatMessage("user", "weather in Paris?"),
    ChatMessage("assistant", "", tool_calls=(ToolCallData("call_1", "get_weather", '{"city": "Paris"}'),)),
    ChatMessage("tool", "sunny", tool_call_id="call_1", name="get_weather"),
)


def test_a_template_without_tools_gets_them_as_a_system_prompt_and_calls_as_text():
    messages, tools = template_inputs(CONVERSATION, json.dumps([WEATHER]), "{{ messages }}")
    assert tools is None
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert '"name": "get_weather"' in messages[0]["content"]
    assert "<tool_call>" in messages[0]["content"]
    assert messages[2]["content"] == '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert messages[3]["content"] == "<tool_response>\nsunny\n</tool_response>"


def test_a_template_that_knows_tools_gets_them_in_the_hugging_face_shape():
    messages, tools = template_inputs(CONVERSATION, json.dumps([WEATHER]), "{% for tool in tools %}{% endfor %}")
    assert tools == [WEATHER]
    assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert messages[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "name": "get_weather"}
