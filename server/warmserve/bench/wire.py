"""The four wire formats the load generator speaks: what to send, and how to read the answer.

Chat and completions (OpenAI's choices and `data: [DONE]`), the Responses API (typed events
ending with response.completed / response.incomplete) and Anthropic's Messages API (typed
events ending with message_stop). Each reader turns a payload into the same few facts: a
token's text arrived, the token counts, how it finished, that the answer is complete, or an
error. Only the wire protocol is used, so any server that speaks one of them can be measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Endpoint = Literal["completions", "chat", "responses", "messages"]


@dataclass
class Reading:
    """What one payload showed."""

    text: str = ""  # generated text it carries (a token's time is stamped when there is some)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    complete: bool = False  # the last payload of a stream
    error: str | None = None


@dataclass(frozen=True)
class Wire:
    path: str  # after the base URL (which ends with /v1)
    body: Callable[[str, str, int, float, bool], dict[str, Any]]  # (model, prompt, max_tokens, temperature, stream)
    read: Callable[[dict[str, Any], bool], Reading]  # (payload, streamed)
    done_marker: bool = field(default=False)  # the stream ends with `data: [DONE]`


def error_text(payload: Any) -> str:
    """The message of an OpenAI or Anthropic error body (or Responses error event), or the body itself."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(payload, dict) and payload.get("type") == "error" and payload.get("message"):
        return str(payload["message"])
    return json.dumps(payload)[:500]


def _openai_body(key: str) -> Callable[[str, str, int, float, bool], dict[str, Any]]:
    def body(model: str, prompt: str, max_tokens: int, temperature: float, stream: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": temperature, "stream": stream}
        data[key] = [{"role": "user", "content": prompt}] if key == "messages" else prompt
        if stream:
            data["stream_options"] = {"include_usage": True}
        return data

    return body


def _read_choices(payload: dict[str, Any], streamed: bool) -> Reading:
    if payload.get("error"):
        return Reading(error=error_text(payload))
    raw_usage = payload.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    reading = Reading(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))
    for choice in payload.get("choices") or ():
        if not isinstance(choice, dict):
            raise ValueError(f"expected each choice to be a JSON object, got {choice!r:.200}")
        if streamed:
            reading.text += (
                str(choice["text"] or "") if "text" in choice else str((choice.get("delta") or {}).get("content") or "")
            )
        reading.finish_reason = choice.get("finish_reason") or reading.finish_reason
    return reading


def _responses_body(model: str, prompt: str, max_tokens: int, temperature: float, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "input": prompt,
        "max_output_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
        "store": False,  # a benchmark measures generation, not the store's disk
    }


def _read_response(payload: dict[str, Any], streamed: bool) -> Reading:
    kind = payload.get("type")
    if kind in ("error", "response.failed"):
        return Reading(error=error_text(payload if kind == "error" else payload["response"]))
    if payload.get("error") and not streamed:
        return Reading(error=error_text(payload))
    if kind == "response.output_text.delta":
        return Reading(text=str(payload.get("delta") or ""))
    if streamed and kind not in ("response.completed", "response.incomplete"):
        return Reading()
    response = payload["response"] if streamed else payload
    usage = response.get("usage") or {}
    return Reading(
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
        finish_reason=response.get("status"),
        complete=True,
    )


def _messages_body(model: str, prompt: str, max_tokens: int, temperature: float, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": min(temperature, 1.0),  # Anthropic's range is 0..1
        "stream": stream,
    }


def _read_message(payload: dict[str, Any], streamed: bool) -> Reading:
    kind = payload.get("type")
    if kind == "error":
        return Reading(error=error_text(payload))
    if not streamed:
        usage = payload.get("usage") or {}
        return Reading(
            prompt_tokens=_anthropic_input(usage),
            completion_tokens=usage.get("output_tokens"),
            finish_reason=payload.get("stop_reason"),
            complete=True,
        )
    if kind == "content_block_delta":
        return Reading(text=str((payload.get("delta") or {}).get("text") or ""))
    if kind == "message_start":
        return Reading(prompt_tokens=_anthropic_input((payload.get("message") or {}).get("usage") or {}))
    if kind == "message_delta":
        usage = payload.get("usage") or {}
        return Reading(
            completion_tokens=usage.get("output_tokens"), finish_reason=(payload.get("delta") or {}).get("stop_reason")
        )
    return Reading(complete=kind == "message_stop")


def _anthropic_input(usage: dict[str, Any]) -> int | None:
    """All prompt tokens: Anthropic counts cache reads and writes apart from input_tokens."""
    if not isinstance(usage.get("input_tokens"), int):
        return None
    return sum(
        int(usage.get(key) or 0) for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )


WIRES: dict[Endpoint, Wire] = {
    "completions": Wire("/completions", _openai_body("prompt"), _read_choices, done_marker=True),
    "chat": Wire("/chat/completions", _openai_body("messages"), _read_choices, done_marker=True),
    "responses": Wire("/responses", _responses_body, _read_response),
    "messages": Wire("/messages", _messages_body, _read_message),
}
