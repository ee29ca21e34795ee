"""Grammars for structured output and tool calls, built and checked before a request is admitted.

Every constraint is an llguidance grammar: the engines enforce it token by token over
their own vocabulary (backends/constraints.py). Building and validating one takes about
a millisecond and needs no tokenizer, so it happens here, in the API process: a schema
llguidance cannot honour (an unknown type, a dangling $ref, an unsupported keyword such
as `not`) is a 400 naming the parameter, and never reaches a worker. Results are cached
by text (bounded), so a client repeating its schema pays once.

Output shapes:
- response_format json_object: any JSON object; json_schema: an instance of the schema,
  whether `strict` is true or not (the schema is always enforced, never just hinted).
  Objects that list `properties` and say nothing of `additionalProperties` are closed:
  the output has only the listed keys (still valid against the schema, and what strict
  mode asks for anyway). Small models otherwise invent keys until max_tokens.
- tool calls: Hermes-style blocks, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`,
  the arguments following the function's `parameters` schema. `required` allows one or
  more calls (one when parallel_tool_calls is false), a named tool_choice exactly one call
  of that function, `auto` either the calls or an answer (free text, or the
  response_format's JSON) that does not start with "<".
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from llguidance import LLMatcher

from warmserve.errors import InvalidRequest
from warmserve.generation import Constraint

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

# Whitespace as the model likes to write it (small models write worse JSON when forced
# compact: measured on SmolLM2), but in bounded runs, so it cannot wander off into
# endless newlines.
_JSON_OPTIONS = {"whitespace_pattern": r"[ \t\n\r]{0,48}"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


@lru_cache(maxsize=512)
def _problem(grammar: str) -> str:
    """llguidance's complaint about a grammar, or "" when it is valid."""
    message: str = LLMatcher.validate_grammar(grammar)
    return message


def checked(grammar: str, param: str, what: str) -> Constraint:
    problem = _problem(grammar)
    if problem:
        raise InvalidRequest(f"Invalid {what}: {problem}", param=param)
    return Constraint(grammar=grammar, param=param)


def closed(schema: Any, in_all_of: bool = False) -> Any:
    """`schema` with its objects closed (see above); parts of an allOf stay open, as they must merge."""
    if isinstance(schema, list):
        return [closed(item, in_all_of) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value, in_all_of or key == "allOf") for key, value in schema.items()}
    if (
        not in_all_of
        and isinstance(schema.get("properties"), dict)
        and "additionalProperties" not in schema
        and "patternProperties" not in schema
        and "allOf" not in schema
    ):
        out["additionalProperties"] = False
    return out


def schema_grammar(schema: dict[str, Any], param: str) -> Constraint:
    """Output that is one JSON instance of `schema`."""
    try:
        grammar = LLMatcher.grammar_from_json_schema(json.dumps(closed(schema)), overrides=_JSON_OPTIONS)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidRequest(f"Invalid JSON schema: {exc}", param=param) from exc
    return checked(grammar, param, "JSON schema")


def call_schema(name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """One call of function `name`, as the model writes it inside a tool-call block."""
    arguments = parameters if parameters is not None else {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def tool_call_grammar(calls: list[dict[str, Any]], many: bool, answer: dict[str, Any] | bool, param: str) -> Constraint:
    """Tool-call blocks whose JSON is one of `calls`; `answer`: what else the model may say.

    `answer` False: only calls; True: free text (not starting with "<"); a schema: that JSON.
    """
    call_json = closed(calls[0] if len(calls) == 1 else {"anyOf": calls})
    call_json = {**call_json, "x-guidance": _JSON_OPTIONS}
    lines = [
        f'call: "{TOOL_CALL_OPEN}" %json {json.dumps(call_json)} "{TOOL_CALL_CLOSE}"',
        "calls: call+" if many else "calls: call",
    ]
    if answer is False:
        lines.insert(0, "start: calls")
    elif answer is True:
        lines[:0] = ["start: calls | TEXT", r"TEXT: /[^<](.|\n)*/"]
    else:
        assert isinstance(answer, dict)
        answer_json = {**closed(answer), "x-guidance": _JSON_OPTIONS}
        lines[:0] = ["start: calls | answer", f"answer: %json {json.dumps(answer_json)}"]
    return checked(LLMatcher.grammar_from_lark("\n".join(lines) + "\n"), param, "tool definitions")
