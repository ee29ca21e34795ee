"""The Responses API's items, to and from the chat generation path.

Input items (a request's, and a stored conversation's before it) become engine-neutral
chat messages, so a model answers a Responses request exactly as it answers the same chat
completion. Items are kept as the JSON the API returns for them (`input_items`, a stored
response's `output`): one form for the store, the listing and the next turn's prompt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from warmserve.api.params import require_few_messages
from warmserve.api.structured import OutputPlan, answer_schema, tool_plan
from warmserve.generation import ChatMessage, Role, ToolCallData
from warmserve.protocol import (
    FunctionCallOut,
    FunctionDefinition,
    FunctionTool,
    MessageItemIn,
    NamedFunction,
    NamedToolChoice,
    OutputItem,
    OutputMessage,
    OutputText,
    ReasoningItem,
    ReasoningText,
    ResponsesInput,
    ToolCall,
    ToolChoice,
    ToolDefinition,
)

Item = dict[str, Any]


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def input_items(body: ResponsesInput) -> list[Item]:
    """This request's input as stored items, each with an id (OpenAI lists them with one)."""
    if isinstance(body.input, str):
        return [_message_item("user", body.input)]
    items: list[Item] = []
    for item in body.input:
        if isinstance(item, MessageItemIn):
            items.append(_message_item(item.role, item.text(), item.id, item.phase))
            continue
        data = item.model_dump(mode="json", exclude_none=True, by_alias=True)  # `async`, not `async_`
        data.setdefault("id", new_item_id(_ID_PREFIXES[item.type]))
        data.setdefault("status", "completed")
        items.append(data)
    return items


_ID_PREFIXES = {"function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def _message_item(role: str, text: str, item_id: str | None = None, phase: str | None = None) -> Item:
    """A message as stored: its text in one part, `output_text` for the assistant's as OpenAI has it."""
    part = (
        {"type": "output_text", "text": text, "annotations": []}
        if role == "assistant"
        else {"type": "input_text", "text": text}
    )
    item = {"type": "message", "id": item_id or new_item_id("msg"), "role": role, "content": [part]}
    return {**item, "status": "completed", **({"phase": phase} if phase else {})}


def conversation(instructions: str | None, items: Sequence[Item], max_messages: int) -> tuple[ChatMessage, ...]:
    """Chat messages for `items` (stored form), after `instructions` as the system message.

    A run of function_call items joins the assistant message before it (or starts one): one
    assistant turn with its calls, as chat templates expect; each function_call_output is a
    tool message named after the call it answers. Reasoning items stay out of the prompt.
    """
    out = [ChatMessage(role="system", content=instructions)] if instructions else []
    called: dict[str, str] = {}
    for item in items:
        kind = item["type"]
        if kind == "message":
            role: Role = _ROLES[item["role"]]
            out.append(ChatMessage(role=role, content=_text(item["content"])))
        elif kind == "function_call":
            call = ToolCallData(item["call_id"], item["name"], item["arguments"])
            called[call.id] = call.name
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":
                out[-1] = ChatMessage(role="assistant", content=last.content, tool_calls=(*last.tool_calls, call))
            else:
                out.append(ChatMessage(role="assistant", content="", tool_calls=(call,)))
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else _text(output)
            call_id = item["call_id"]
            out.append(ChatMessage(role="tool", content=text, tool_call_id=call_id, name=called.get(call_id)))
    require_few_messages(len(out), max_messages, "input")  # the stored conversation's count too
    return tuple(out)


_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _text(parts: str | list[Item]) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(str(part.get("text", part.get("refusal", ""))) for part in parts)


def output_plan(body: ResponsesInput) -> OutputPlan:
    """Chat's plan for tools, tool_choice and the answer's format, from the Responses API's terms."""
    tools = [_chat_tool(tool) for tool in body.tools or () if isinstance(tool, FunctionTool)]
    choice: ToolChoice | None
    match body.tool_choice:
        case str() as named if not tools and named in ("auto", "none"):
            choice = None  # the openai client may send these without tools
        case str() as named:
            choice = named
        case None:
            choice = None
        case function:
            choice = NamedToolChoice(type="function", function=NamedFunction(name=function.name))
    parallel = body.parallel_tool_calls if tools else None
    fmt = body.text.format if body.text is not None else None
    return tool_plan(
        tools, choice, parallel, answer_schema(fmt), where=("name", "parameters"), answer_param="text.format.schema"
    )


def _chat_tool(tool: FunctionTool) -> ToolDefinition:
    return ToolDefinition(type="function", function=FunctionDefinition(**tool.model_dump(exclude={"type"})))


def output_items(text: str, calls: Sequence[ToolCall], complete: bool, thinking: str | None = None) -> list[OutputItem]:
    """A reasoning model's thinking, the message (when there is text, or nothing else), then one
    function_call item per call."""
    status = "completed" if complete else "incomplete"
    items: list[OutputItem] = []
    if thinking is not None:
        cut = not complete and not text and not calls  # cut off while thinking
        content = [ReasoningText(text=thinking)]
        items.append(ReasoningItem(id=new_item_id("rs"), status="incomplete" if cut else "completed", content=content))
    if text or not calls:
        items.append(OutputMessage(id=new_item_id("msg"), status=status, content=[OutputText(text=text)]))
    items.extend(function_call_item(call) for call in calls)
    return items


def function_call_item(call: ToolCall) -> FunctionCallOut:
    return FunctionCallOut(
        id=new_item_id("fc"),
        call_id=call.id,
        name=call.function.name,
        arguments=call.function.arguments,
        status="completed",
    )
