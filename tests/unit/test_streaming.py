import asyncio
import json

import pytest
from starlette.requests import ClientDisconnect

from warmserve.api.streaming import (
    OPENAI_SSE,
    SseFormat,
    keep_alive,
    sse_data,
    sse_events,
    sse_response,
    text_chunk_renderer,
)
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


class Gated:
    """A source that yields "a", then waits at a gate the test opens, then yields "b"; it records how it ended."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        self.ended: str | None = None

    async def items(self):
        try:
            yield "a"
            self.waiting.set()
            await self.gate.wait()
            yield "b"
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise
        except GeneratorExit:
            self.ended = "closed"
            raise
        else:
            self.ended = "exhausted"


async def test_keep_alive_passes_a_busy_source_through_without_beats():
    assert await sent(keep_alive(frames("1", "2", "3"), "beat", 60)) == ["1", "2", "3"]


async def test_keep_alive_beats_while_the_source_waits_and_loses_none_of_its_items():
    source = Gated()
    stream = keep_alive(source.items(), "beat", 0.001)
    got = [await anext(stream) for _ in range(4)]
    assert got == ["a", "beat", "beat", "beat"]  # the source waits at the gate until the test opens it
    source.gate.set()
    rest = await sent(stream)
    assert [item for item in got + rest if item != "beat"] == ["a", "b"]
    assert source.ended == "exhausted"


async def test_closing_keep_alive_during_a_beat_ends_the_source_where_it_waits():
    source = Gated()
    stream = keep_alive(source.items(), "beat", 0.001)
    assert [await anext(stream), await anext(stream)] == ["a", "beat"]
    await stream.aclose()
    assert source.ended == "cancelled"


async def test_closing_keep_alive_between_items_closes_the_source():
    source = Gated()
    stream = keep_alive(source.items(), "beat", 60)
    assert await anext(stream) == "a"
    await stream.aclose()
    assert source.ended == "closed"


async def test_cancelling_the_reader_of_keep_alive_reaches_the_source():
    source = Gated()
    reader = asyncio.create_task(sent(keep_alive(source.items(), "beat", 0.001)))
    await source.waiting.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert source.ended == "cancelled"


async def test_a_client_leaving_a_silent_kept_alive_stream_releases_the_owner_and_the_source():
    owner, source = Owner(), Gated()
    beats = 0

    async def receive() -> dict[str, object]:
        await source.waiting.wait()
        while beats < 3:
            await asyncio.sleep(0.001)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        nonlocal beats
        beats += message.get("body") == b"data: beat\n\n"

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "POST", "path": "/"}
    stream = keep_alive(source.items(), "data: beat\n\n", 0.001)
    await asyncio.wait_for(sse_response(stream, owner, OPENAI_SSE)(scope, receive, send), 5)
    assert owner.closed
    assert source.ended == "cancelled"


async def test_keep_alive_raises_the_sources_error():
    with pytest.raises(BackendError, match="injected"):
        await sent(keep_alive(frames("1", fail=BackendError("injected")), "beat", 60))
