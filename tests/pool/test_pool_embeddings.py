"""Embedding requests through the worker pool: real worker processes, the fake engine."""

import asyncio
import os
import signal

import pytest

from tests.pool.test_pool import _all_ready, drain, make_pool, request  # noqa: F401 - make_pool is a fixture
from warmserve.embedding import EmbedRequest
from warmserve.errors import ContextLengthExceeded
from warmserve.generation import Finished


async def test_an_embedding_is_answered_between_the_steps_of_a_running_generation(make_pool):  # noqa: F811
    pool = await make_pool(capacity=1, token_delay_s=0.05)
    await asyncio.wait_for(_all_ready(pool), 60)
    generation = await pool.submit(request("a b c", max_tokens=40))
    queued = await pool.submit(request("d e f", max_tokens=40))  # waits: the worker's one slot is taken
    answer = await asyncio.wait_for(pool.embed(EmbedRequest(("one two", "three"))), 5)
    assert (len(answer.vectors), answer.prompt_tokens) == (2, 3)
    assert not generation.done
    assert isinstance((await drain(generation))[-1], Finished)
    assert isinstance((await drain(queued))[-1], Finished)


async def test_an_unreadable_input_fails_only_its_request(make_pool):  # noqa: F811
    pool = await make_pool(n_ctx=64)
    await asyncio.wait_for(_all_ready(pool), 60)
    with pytest.raises(ContextLengthExceeded):
        await pool.embed(EmbedRequest(("fine", "word " * 65)))
    assert len((await pool.embed(EmbedRequest(("fine",)))).vectors) == 1
    assert pool.running == 0


async def test_an_embedding_on_a_worker_that_dies_is_answered_by_another(make_pool):  # noqa: F811
    pool = await make_pool(workers=2, token_delay_s=0.1)
    await asyncio.wait_for(_all_ready(pool), 60)
    inputs = tuple(f"text number {i}" for i in range(640))  # ten batches of 64: about a second of work
    answer = asyncio.ensure_future(pool.embed(EmbedRequest(inputs)))
    while not any(w.running for w in pool.workers):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    [holder] = [w for w in pool.workers if w.running]
    os.kill(holder.pid, signal.SIGKILL)
    assert len((await asyncio.wait_for(answer, 30)).vectors) == 640
    assert pool.running == pool.in_flight.value == 0
