"""Prefix-aware dispatch with the fake backend: real worker processes, requests held running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from warmserve.config import ModelSpec
from warmserve.generation import ChatMessage, GenerationRequest, SamplingParams
from warmserve.metrics import Metrics
from warmserve.model_options import FakeOptions
from warmserve.pool import ModelPool, RequestStream

SYSTEM = "You are an agent. Call the tools below when the user asks for something they can do. " * 20
MakePool = Callable[..., Awaitable[ModelPool]]


def agent(question: str, max_tokens: int = 400) -> GenerationRequest:
    messages = (ChatMessage("system", SYSTEM), ChatMessage("user", question))
    return GenerationRequest(messages=messages, sampling=SamplingParams(temperature=0, max_tokens=max_tokens))


def filler(i: int) -> GenerationRequest:
    return GenerationRequest(prompt=f"filler {i}", sampling=SamplingParams(temperature=0, max_tokens=400))


@pytest.fixture
async def make_pool() -> AsyncIterator[MakePool]:
    pools: list[ModelPool] = []

    async def make(**spec: object) -> ModelPool:
        settings = {"name": "fake", "backend": "fake", "workers": 2, "fake": FakeOptions(token_delay_s=0.05), **spec}
        pool = ModelPool(ModelSpec(**settings), "warning", Metrics())  # type: ignore[arg-type]
        pools.append(pool)
        await pool.start()
        while pool.ready_workers < 2:
            await asyncio.sleep(0.05)
        return pool

    yield make
    for pool in pools:
        await pool.stop()


def worker_of(pool: ModelPool, stream: RequestStream) -> int:
    [index] = [w.index for w in pool._workers if stream.request_id in w.inflight]
    return index


async def finish(stream: RequestStream) -> None:
    async for _ in stream:
        pass


async def test_a_request_goes_to_the_worker_that_ran_its_prompt_prefix_though_another_is_as_idle(make_pool):
    pool = await make_pool(slots=8)
    busy = await pool.submit(filler(0))  # worker 0
    first = await pool.submit(agent("What is the weather in Paris?", max_tokens=2))  # worker 1, the least loaded
    assert (worker_of(pool, busy), worker_of(pool, first)) == (0, 1)
    await finish(first)
    other = await pool.submit(filler(1))  # worker 1 again: both workers now run one request
    second = await pool.submit(agent("Book a table for two."))
    assert worker_of(pool, other) == 1
    assert worker_of(pool, second) == 1  # least-loaded dispatch would pick worker 0 (lower index)
    for stream in (busy, other, second):
        stream.close()


async def test_a_prefix_holder_busier_than_the_slack_loses_the_request_to_the_least_loaded(make_pool):
    pool = await make_pool(slots=8, prefix_routing_slack=2)
    held = [await pool.submit(filler(0))]  # worker 0
    first = await pool.submit(agent("What is the weather in Paris?", max_tokens=2))  # worker 1
    assert worker_of(pool, first) == 1
    await finish(first)
    for i in range(2):  # worker 1 holds the prefix: it runs 0, then 1, against worker 0's 1
        held.append(await pool.submit(agent(f"Question {i}")))
    assert [worker_of(pool, s) for s in held] == [0, 1, 1]
    held.append(await pool.submit(filler(1)))  # no prefix: the least loaded, worker 0; both run 2
    for i in range(3, 7):  # worker 1 runs 2, 3, 4 against 2 (within the slack), then 5 against 2 (beyond it)
        held.append(await pool.submit(agent(f"Question {i}")))
    assert [worker_of(pool, s) for s in held[3:]] == [0, 1, 1, 1, 0]
    for stream in held:
        stream.close()


async def test_with_prefix_routing_off_the_least_loaded_worker_gets_it(make_pool):
    pool = await make_pool(slots=8, prefix_routing=False)
    busy = await pool.submit(filler(0))
    first = await pool.submit(agent("What is the weather in Paris?", max_tokens=2))
    assert worker_of(pool, first) == 1
    await finish(first)
    other = await pool.submit(filler(1))
    second = await pool.submit(agent("Book a table for two."))
    assert (worker_of(pool, other), worker_of(pool, second)) == (1, 0)
    for stream in (busy, other, second):
        stream.close()
