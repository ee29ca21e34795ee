"""Chat messages and tool definitions as a model's chat template expects them.

A template that mentions `tools` (Qwen2.5, Hermes, SmolLM3, Llama 3.1 and most recent
instruct models) gets them as transformers passes them: `tools=` plus messages in the
Hugging Face shape (assistant `tool_calls` with arguments as objects, `tool` messages
with `tool_call_id` and `name`).

A template that does not (SmolLM2, plain ChatML, the fallback template) gets them as
text instead, in the Hermes convention the server parses calls in: the function schemas
and how to call them appended to the system message (a system message is added when
there is none), earlier calls written as `<tool_call>` blocks in the assistant's text,
and tool results as a user message of `<tool_response>` blocks.
"""

from __future__ import annotations

import json
from typing import Any

from warmserve.generation import ChatMessage, ToolCallData

TOOLS_PROMPT = (
    "You can call functions to help you answer. These are the functions, as JSON Schema:\n"
    "{tools}\n"
    "To call a function, reply with nothing but\n"
    '<tool_call>{{"name": <function name>, "arguments": <arguments as a JSON object>}}</tool_call>\n'
    "Each result comes back in a <tool_response> block; then answer the user."
)


def knows_tools(template_source: str | None) -> bool:
    return bool(template_source) and "tools" in str(template_source)


def template_inputs(
    messages: tuple[ChatMessage, ...], tools_json: str | None, template_source: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) to render with the template; tools None when the template gets none."""
    tools = json.loads(tools_json) if tools_json else None
    if knows_tools(template_source):
        return [_native(m) for m in messages], tools
    rendered: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            block = f"<tool_response>\n{m.content}\n</tool_response>"
            previous = rendered[-1] if rendered else None
            if previous is not None and previous.get("tool_results"):
                previous["content"] += "\n" + block
            else:
                rendered.append({"role": "user", "content": block, "tool_results": True})
        elif m.tool_calls:
            calls = "\n".join(call_text(call) for call in m.tool_calls)
            rendered.append({"role": m.role, "content": f"{m.content}\n{calls}" if m.content else calls})
        else:
            rendered.append({"role": m.role, "content": m.content})
    for message in rendered:
        message.pop("tool_results", None)
    if tools:
        prompt = TOOLS_PROMPT.format(tools=json.dumps([tool["function"] for tool in tools], ensure_ascii=False))
        if rendered and rendered[0]["role"] == "system":
            rendered[0]["content"] = f"{rendered[0]['content']}\n\n{prompt}"
        else:
            rendered.insert(0, {"role": "system", "content": prompt})
    return rendered, None


def call_text(call: ToolCallData) -> str:
    return f'<tool_call>{{"name": {json.dumps(call.name)}, "arguments": {_arguments_text(call.arguments)}}}</tool_call>'


def _arguments_text(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return json.dumps(arguments, ensure_ascii=False)


def _native(m: ChatMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments_value(c.arguments)}}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        message["tool_call_id"] = m.tool_call_id
        if m.name:
            message["name"] = m.name
    return message


def _arguments_value(arguments: str) -> Any:
    """Templates index into arguments (`arguments | tojson`, `arguments.items()`): an object where possible."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
