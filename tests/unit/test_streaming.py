import asyncio
import json

import pytest
from starlette.requests import ClientDisconnect

from warmserve.api.streaming import OPENAI_SSE, SseFormat, sse_data, sse_events, sse_response, text_chunk_renderer
from warmserve.errors import BackendError
from warmserve.protocol import ChatChunkChoice, ChatCompletionChunk, ChatDelta


def full(text: str) -> str:
    choice = ChatChunkChoice(index=0, delta=ChatDelta(content=text))
    return sse_data(ChatCompletionChunk(id="c1", created=1, model='m"x', choices=[choice]).model_dump(mode="json"))


@pytest.mark.parametrize("text", ["", "hello", ' "quoted" \\ back', "line\nbreak\t", "é€😀", "\u0000"])
def test_the_fast_token_chunk_is_byte_for_byte_the_models_rendering(text):
    assert text_chunk_renderer(full)(text) == full(text)
    assert json.loads(full(text).removeprefix("data: "))["choices"][0]["delta"]["content"] == text


async def frames(*payloads: str, fail: Exception | None = None):
    for payload in payloads:
        yield payload
    if fail is not None:
        raise fail


async def sent(stream) -> list[str]:
    return [frame async for frame in stream]


async def test_an_openai_stream_ends_with_done():
    assert await sent(sse_events(frames("data: 1\n\n"), OPENAI_SSE)) == ["data: 1\n\n", "data: [DONE]\n\n"]


async def test_a_typed_error_is_sent_as_it_is_and_no_done_follows():
    stream = sse_events(frames("data: 1\n\n", fail=BackendError("injected")), OPENAI_SSE)
    first, error = await sent(stream)
    assert first == "data: 1\n\n"
    body = json.loads(error.removeprefix("data: "))
    assert body["error"]["message"] == "injected"
    assert body["error"]["code"] == "backend_error"


async def test_an_unexpected_error_is_logged_and_sent_as_an_internal_error(caplog):
    [error] = await sent(sse_events(frames(fail=KeyError("secret detail")), OPENAI_SSE))
    assert "secret detail" not in error
    assert json.loads(error.removeprefix("data: "))["error"]["code"] == "internal_error"
    assert "secret detail" in caplog.text


# What an Anthropic-style API would pass: typed events, its own error shape, no terminator.
TYPED = SseFormat(error_event=lambda error: sse_data({"type": "error", "message": error.message}, event="error"))


async def test_a_format_without_done_ends_with_the_renderers_last_event_or_its_own_error_event():
    done = sse_data({"type": "message_stop"}, event="message_stop")
    assert await sent(sse_events(frames(done), TYPED)) == ['event: message_stop\ndata: {"type":"message_stop"}\n\n']
    [error] = await sent(sse_events(frames(fail=BackendError("no")), TYPED))
    assert error == 'event: error\ndata: {"type":"error","message":"no"}\n\n'


class Owner:
    """Stands for Generations: records whether the response released it."""

    def __init__(self) -> None:
        self.closed = False

    async def __aenter__(self) -> "Owner":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True


async def endless():
    while True:
        yield "data: tick\n\n"
        await asyncio.sleep(0)


async def test_the_response_releases_its_owner_when_the_client_hangs_up():
    owner = Owner()
    sent_bodies: list[bytes] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, object]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            sent_bodies.append(message["body"])  # type: ignore[arg-type]
            if len(sent_bodies) == 3:
                gone.set()

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "POST", "path": "/"}
    await asyncio.wait_for(sse_response(endless(), owner, OPENAI_SSE)(scope, receive, send), 5)
    assert owner.closed


async def test_the_response_releases_its_owner_when_sending_fails():
    owner = Owner()

    async def receive() -> dict[str, object]:
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset")

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "path": "/"}
    with pytest.raises(ClientDisconnect):
        await sse_response(endless(), owner, OPENAI_SSE)(scope, receive, send)
    assert owner.closed
