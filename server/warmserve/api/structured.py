"""What a chat request's output must look like: response_format and tools/tool_choice.

The plan says which tools the prompt shows the model, which grammar (if any) the engine
enforces, and which function names the API then parses out of the output as tool calls.

    tool_choice   tools in prompt   grammar                                 tool calls parsed
    none          no                response_format's, if any               no
    auto          yes               calls, or an answer not starting "<"    yes
    required      yes               one or more calls (one if not parallel) yes
    {function}    yes               exactly one call of that function       yes

A named tool_choice is enforced, never treated as auto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from warmserve.api import grammar
from warmserve.errors import InvalidRequest
from warmserve.generation import Constraint
from warmserve.protocol import (
    ChatCompletionRequest,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    NamedToolChoice,
    TextFormatJsonObject,
    TextFormatJsonSchema,
    ToolChoice,
    ToolDefinition,
)


@dataclass(frozen=True)
class OutputPlan:
    tools_json: str | None = None  # OpenAI tool definitions for the prompt
    constraint: Constraint | None = None
    tool_names: frozenset[str] = frozenset()  # parse calls of these out of the output


def output_plan(body: ChatCompletionRequest) -> OutputPlan:
    fmt = body.response_format
    return tool_plan(body.tools or [], body.tool_choice, body.parallel_tool_calls, answer_schema(fmt))


def tool_plan(
    tools: list[ToolDefinition],
    choice: ToolChoice | None,
    parallel_tool_calls: bool | None,
    answer: dict[str, Any] | None = None,
    where: tuple[str, str] = ("function.name", "function.parameters"),
    answer_param: str = "response_format",
) -> OutputPlan:
    """The plan for `tools` and `choice` (in chat's terms, which the other APIs translate to).

    `answer`: the JSON schema a non-call answer must follow, if any; `where`: where a tool's
    name and schema sit in the request, and `answer_param` the answer's schema, for a 400's `param`.
    """
    if not tools:
        if choice is not None:
            raise InvalidRequest("'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
        if parallel_tool_calls is not None:
            raise InvalidRequest(
                "'parallel_tool_calls' is only allowed when 'tools' are specified.", param="parallel_tool_calls"
            )
        return OutputPlan(constraint=_answer_constraint(answer, answer_param))
    calls = _call_schemas(tools, answer, where, answer_param)
    if choice is None:
        choice = "auto"
    if choice == "none":
        return OutputPlan(constraint=_answer_constraint(answer, answer_param))
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in calls:
            raise InvalidRequest(
                f"tool_choice names the function '{name}', which is not among the 'tools' "
                f"({', '.join(sorted(calls))}).",
                param="tool_choice",
            )
        chosen, many, names = [calls[name]], False, frozenset([name])
        others: dict[str, Any] | bool = False
    else:
        chosen, names = list(calls.values()), frozenset(calls)
        many = parallel_tool_calls is not False
        others = False if choice == "required" else (answer if answer is not None else True)
    constraint = grammar.tool_call_grammar(chosen, many, others, "tools")
    tools_json = json.dumps([tool.model_dump(mode="json", exclude_none=True) for tool in tools])
    return OutputPlan(tools_json=tools_json, constraint=constraint, tool_names=names)


def answer_schema(fmt: object) -> dict[str, Any] | None:
    """The JSON an answer (not a tool call) must be, if its format (chat's response_format or the
    Responses API's text.format) asks for JSON."""
    if isinstance(fmt, JsonObjectFormat | TextFormatJsonObject):
        return grammar.ANY_OBJECT
    if isinstance(fmt, JsonSchemaResponseFormat):
        return fmt.json_schema.schema_ if fmt.json_schema.schema_ is not None else grammar.ANY_OBJECT
    if isinstance(fmt, TextFormatJsonSchema):
        return fmt.schema_
    return None


def _answer_constraint(schema: dict[str, Any] | None, param: str) -> Constraint | None:
    return None if schema is None else grammar.schema_grammar(schema, param)


def _call_schemas(
    tools: list[ToolDefinition], answer: dict[str, Any] | None, where: tuple[str, str], answer_param: str
) -> dict[str, dict[str, Any]]:
    """Each function's call schema by name, every one checked on its own so a 400 names it."""
    calls: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        function = tool.function
        if function.name in calls:
            raise InvalidRequest(f"Two tools are named '{function.name}'.", param=f"tools[{i}].{where[0]}")
        schema = grammar.call_schema(function.name, function.parameters)
        grammar.schema_grammar(schema, f"tools[{i}].{where[1]}")
        calls[function.name] = schema
    # The answer schema is checked on its own too, so its errors name response_format.
    if answer is not None:
        grammar.schema_grammar(answer, answer_param)
    return calls
