"""Embedding requests through the worker pool: real worker processes, the fake engine."""

import asyncio

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
