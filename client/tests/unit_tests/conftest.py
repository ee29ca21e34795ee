"""Unit tests run without a network: requests go to an httpx.MockTransport that records them.

Its canned answers are checked against the server's response models (see wire.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit_tests import wire

BASE_URL = "http://warmserve.test/v1"
MODEL = "smollm2-135m-instruct"
USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def sse(events: list[dict[str, Any]]) -> httpx.Response:
    text = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def chat_answer(body: dict[str, Any], content: str = "Hi there") -> httpx.Response:
    if body.get("stream"):
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            {"choices": [{"index": 0, "delta": {"content": content}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({"choices": [], "usage": USAGE})
        common = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        chunks = [wire.valid({**common, **chunk}, wire.ChatCompletionChunk) for chunk in chunks]
        return sse(chunks)
    message = {"role": "assistant", "content": content}
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE,
    }
    return httpx.Response(200, json=wire.valid(answer, wire.ChatCompletion))


def completion_answer(body: dict[str, Any]) -> httpx.Response:
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    if body.get("stream"):
        common = {"id": "t1", "object": "text_completion", "created": 1, "model": body["model"]}
        chunks = [{"choices": [{"index": 0, "text": " red", "finish_reason": None}]}]
        chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
        return sse([wire.valid({**common, **chunk}, wire.Completion) for chunk in chunks])
    answer = {
        "id": "t1",
        "object": "text_completion",
        "created": 1,
        "model": body["model"],
        "choices": [
            {"index": i, "text": f" answer {i}", "finish_reason": "length"} for i in range(len(prompts))
        ],
        "usage": USAGE,
    }
    return httpx.Response(200, json=wire.valid(answer, wire.Completion))


def responses_answer(body: dict[str, Any], content: str = "Hi there") -> httpx.Response:
    part = {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
    message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
    message["content"] = [part]
    usage = {"input_tokens": 7, "input_tokens_details": {}, "output_tokens": 2, "total_tokens": 9}
    answer = {
        "id": "resp_1",
        "created_at": 1,
        "status": "completed",
        "model": body["model"],
        "output": [message],
        "usage": usage,
    }
    return httpx.Response(200, json=wire.valid(answer, wire.ResponseObject))


class Recorder:
    """What the client sent, and a way to choose what the 'server' answers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] | None = None

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.content]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            return self.answer(request)
        body = json.loads(request.content)
        if request.url.path.endswith("/chat/completions"):
            return chat_answer(body)
        if request.url.path.endswith("/responses"):
            return responses_answer(body)
        return completion_answer(body)

    def clients(self) -> dict[str, Any]:
        transport = httpx.MockTransport(self)
        return {
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
        }


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the developer's WARMSERVE_* or OPENAI_* variables."""
    for name in (
        "WARMSERVE_BASE_URL",
        "WARMSERVE_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_API_BASE",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def error_answer(status: int, code: str | None, message: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    wire.valid(body, wire.ErrorResponse)
    return lambda request: httpx.Response(status, json=body)
