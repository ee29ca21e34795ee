"""The owner of a request's generations: one read path per n, and every stream cancelled on every exit."""

import asyncio
from contextlib import aclosing

import pytest

from warmserve.api.errors import ClientDisconnected
from warmserve.api.generations import Generations
from warmserve.errors import BackendError, Overloaded
from warmserve.generation import Failed, Finished, GenerationRequest, Started, TextDelta
from warmserve.pool import RequestStream

FINISHED = Finished("stop", prompt_tokens=2, completion_tokens=3)


class FakePool:
    """Admits every request at once; the test pushes each stream's events and sees what was cancelled."""

    def __init__(self, refuse_from: int | None = None, admit: bool = True) -> None:
        self.streams: list[RequestStream] = []
        self.cancelled: list[str] = []
        self.response_ids: list[str | None] = []
        self.refuse_from = refuse_from
        self.admit = admit

    async def submit(self, request: GenerationRequest) -> RequestStream:
        self.response_ids.append(request.response_id)
        stream = RequestStream(f"r{len(self.streams)}", self.cancelled.append, timeout_s=60)
        refused = self.refuse_from is not None and len(self.streams) >= self.refuse_from
        if refused:
            stream.push(Failed(Overloaded("full").info()))
        elif self.admit:
            stream.push(Started(prompt_tokens=2))
        self.streams.append(stream)
        return stream

    def answer(self, index: int, *texts: str) -> None:
        for text in texts:
            self.streams[index].push(TextDelta(text))
        self.streams[index].push(FINISHED)


async def opened(pool: FakePool, n: int, client: object = None) -> Generations:
    return await Generations.open(pool, [GenerationRequest(prompt="p")] * n, client, "resp")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "ids"), [(1, ["resp"]), (3, ["resp/0", "resp/1", "resp/2"])])
async def test_each_choice_carries_the_response_id_into_the_pool(n, ids):
    pool = FakePool()
    async with await opened(pool, n):
        assert pool.response_ids == ids


async def test_one_choice_is_read_straight_from_its_stream_without_tasks():
    pool = FakePool()
    generations = await opened(pool, 1)
    coming = [TextDelta("a"), TextDelta("b"), FINISHED]
    pool.streams[0].push(coming.pop(0))
    tasks = len(asyncio.all_tasks())
    seen = []
    async with generations:
        async for index, event in generations.events():
            assert len(asyncio.all_tasks()) == tasks  # no reader task (and so no queue hop) between token and client
            seen.append((index, event))
            if coming:  # the next token arrives only now, so a reader task would still be waiting for it
                pool.streams[0].push(coming.pop(0))
    assert seen == [(0, TextDelta("a")), (0, TextDelta("b")), (0, FINISHED)]
    assert generations.finished() == [FINISHED]
    assert pool.cancelled == []  # a finished stream needs no cancel


async def test_several_choices_interleave_as_their_events_come():
    pool = FakePool()
    generations = await opened(pool, 2)
    pool.streams[1].push(TextDelta("x"))
    pool.answer(0, "a")
    pool.answer(1, "y")
    async with generations:
        seen = [(index, event) async for index, event in generations.events()]
    assert [item for item in seen if item[0] == 0] == [(0, TextDelta("a")), (0, FINISHED)]
    assert [item for item in seen if item[0] == 1] == [(1, TextDelta("x")), (1, TextDelta("y")), (1, FINISHED)]
    assert generations.finished() == [FINISHED, FINISHED]


async def test_collect_gives_each_choice_whole_in_order():
    pool = FakePool()
    generations = await opened(pool, 2)
    pool.answer(1, "late", "r")
    pool.answer(0, "fi", "rst")
    async with generations:
        results = await generations.collect()
    assert [(r.text, r.finished) for r in results] == [("first", FINISHED), ("later", FINISHED)]


@pytest.mark.parametrize("n", [1, 3])
async def test_leaving_early_cancels_every_unfinished_choice(n):
    pool = FakePool()
    generations = await opened(pool, n)
    for stream in pool.streams:
        stream.push(TextDelta("t"))
    async with generations, aclosing(generations.events()) as events:
        async for _ in events:
            break  # the client went away after one event
    await asyncio.sleep(0)
    assert sorted(pool.cancelled) == [f"r{i}" for i in range(n)]
    assert len(asyncio.all_tasks()) == 1  # only the test itself: no reader left behind


async def test_one_failing_choice_is_raised_and_its_siblings_are_cancelled():
    pool = FakePool()
    generations = await opened(pool, 3)
    pool.answer(0, "done")
    pool.streams[2].push(Failed(BackendError("injected").info()))
    with pytest.raises(BackendError, match="injected"):
        async with generations:
            await generations.collect()
    assert pool.cancelled == ["r1"]  # r0 had finished, r2 had failed


async def test_a_refused_choice_cancels_those_already_admitted():
    pool = FakePool(refuse_from=2)
    with pytest.raises(Overloaded):
        await opened(pool, 3)
    assert pool.cancelled == ["r0", "r1"]


class LeavingClient:
    """An ASGI connection whose client hangs up at once."""

    async def receive(self) -> dict[str, str]:
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}


async def test_a_client_that_leaves_during_a_whole_answer_cancels_every_choice():
    pool = FakePool()
    generations = await opened(pool, 2, LeavingClient())
    with pytest.raises(ClientDisconnected):
        async with generations:
            await generations.collect()  # nothing is ever pushed: only the disconnect ends this
    await asyncio.sleep(0)
    assert pool.cancelled == ["r0", "r1"]
    assert len(asyncio.all_tasks()) == 1


async def test_a_client_that_leaves_while_its_choices_wait_in_the_queue_cancels_them():
    pool = FakePool(admit=False)
    with pytest.raises(ClientDisconnected):
        await opened(pool, 2, LeavingClient())
    await asyncio.sleep(0)
    assert pool.cancelled == ["r0", "r1"]
    assert len(asyncio.all_tasks()) == 1
