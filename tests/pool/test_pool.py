"""The worker pool with the fake backend: real processes, deterministic engines."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.errors import (
    BackendError,
    ContextLengthExceeded,
    ModelFailed,
    ModelUnavailable,
    PoisonRequest,
    WorkerDied,
)
from warmserve.generation import Finished, GenerationRequest, SamplingParams, Started, TextDelta
from warmserve.metrics import Metrics
from warmserve.model_options import FakeOptions
from warmserve.pool import ModelPool, PoolEvent, RequestStream, StateChanged, WorkerEvent
from warmserve.pool.messages import Submit

PROMPT = "one two three four"
REVERSED = "four three two one"


def request(prompt: str = PROMPT, max_tokens: int | None = 4, temperature: float = 0.0) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens))


@pytest.fixture
async def make_pool() -> AsyncIterator:
    pools: list[ModelPool] = []

    async def make(
        workers: int = 1, n_ctx: int = 100_000, events: list | None = None, queue_timeout_s: float = 30, **fake
    ) -> ModelPool:
        spec = ModelSpec(
            name="fake",
            backend="fake",
            workers=workers,
            n_ctx=n_ctx,
            queue_timeout_s=queue_timeout_s,
            fake=FakeOptions(**fake),
        )
        pool = ModelPool(spec, "warning", Metrics(), events.append if events is not None else lambda _: None)
        pools.append(pool)
        await pool.start()
        return pool

    yield make
    for pool in pools:
        await pool.stop()


async def drain(stream: RequestStream) -> list:
    return [event async for event in stream]


async def test_events_arrive_in_order_started_deltas_finished(make_pool):
    pool = await make_pool()
    events = await drain(await pool.submit(request()))
    assert events[0] == Started(prompt_tokens=4)
    assert all(isinstance(e, TextDelta) for e in events[1:-1])
    assert "".join(e.text for e in events[1:-1]) == REVERSED
    assert events[-1] == Finished("length", prompt_tokens=4, completion_tokens=4)


async def test_concurrent_requests_all_complete_and_spread_over_workers(make_pool):
    pool = await make_pool(workers=2, capacity=1, token_delay_s=0.01)
    await asyncio.wait_for(_all_ready(pool), 60)
    streams = [await pool.submit(request(f"w{i} x y", max_tokens=6)) for i in range(6)]
    # one running on each worker (capacity 1), the rest waiting in the pool's queue
    assert sorted(w.running for w in pool.workers) == [1, 1]
    assert pool.waiting == 4
    results = await asyncio.gather(*(drain(s) for s in streams))
    for i, events in enumerate(results):
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == f"y x w{i} y x w{i}"


async def test_a_cancelled_request_frees_its_slot_for_the_next(make_pool):
    pool = await make_pool(capacity=1, token_delay_s=0.01)
    endless = await pool.submit(request(max_tokens=50_000))
    assert isinstance(await endless.__anext__(), Started)
    assert isinstance(await endless.__anext__(), TextDelta)
    endless.close()
    # With capacity 1 the next request can only run once the cancelled one has left the engine;
    # uncancelled, it would hold the slot for 500 s.
    events = await asyncio.wait_for(drain(await pool.submit(request())), 60)
    assert isinstance(events[-1], Finished)
    assert pool.workers[0].running == 0
    assert pool.running == pool.waiting == pool.in_flight.value == 0


async def test_engine_errors_reach_only_their_request(make_pool):
    pool = await make_pool(capacity=2, fail_on="BOOM")
    bad = await pool.submit(request("BOOM a b c", max_tokens=10))
    good = await pool.submit(request())
    with pytest.raises(BackendError, match="injected"):
        await drain(bad)
    assert isinstance((await drain(good))[-1], Finished)


async def test_bad_requests_fail_with_their_typed_error(make_pool):
    pool = await make_pool(n_ctx=64)
    with pytest.raises(ContextLengthExceeded, match=r"context length is 64 tokens\. However, you requested 104 tokens"):
        await (await pool.submit(request(max_tokens=100))).start()


async def text_of(stream: RequestStream) -> tuple[str, Finished]:
    events = await asyncio.wait_for(drain(stream), 60)
    assert isinstance(events[-1], Finished)
    assert not any(isinstance(e, Started) for e in events[1:])  # one start, even when resumed
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1]


def resumed_count(pool: ModelPool, name: str = "warmserve_requests_resumed_total") -> float:
    return pool._metrics.registry.get_sample_value(name, {"model": "fake"}) or 0.0


@pytest.mark.parametrize("stream", [True, False])
async def test_a_killed_workers_requests_carry_on_elsewhere_with_the_undisturbed_text(make_pool, stream):
    pool = await make_pool(workers=2, capacity=1, token_delay_s=0.02)
    await asyncio.wait_for(_all_ready(pool), 60)
    long = GenerationRequest(
        prompt=PROMPT,
        stream=stream,
        sampling=SamplingParams(temperature=0, max_tokens=60, logprobs=2, stop=("one four four",)),
    )
    undisturbed, undisturbed_end = await text_of(await pool.submit(long))
    victim = await pool.submit(long)
    survivor = await pool.submit(request(max_tokens=40))
    assert [w.running for w in pool.workers] == [1, 1]  # the first request went to worker 0
    await victim.start()
    while len(victim.progress.tokens) < 5:  # a few tokens in, some of them shown (streamed) or held
        await asyncio.sleep(0.01)
    old_pid = pool.workers[0].pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    assert (await text_of(victim)) == (undisturbed, undisturbed_end)
    assert undisturbed_end.completion_tokens == 60
    assert (await text_of(survivor))[1].completion_tokens == 40
    assert resumed_count(pool) == 1
    await asyncio.wait_for(_all_ready(pool), 60)
    assert pool.workers[0].pid != old_pid
    assert pool.running == pool.waiting == pool.in_flight.value == 0


async def test_logprobs_of_a_resumed_request_are_those_of_the_undisturbed_one(make_pool):
    pool = await make_pool(workers=2, capacity=1, token_delay_s=0.02)
    await asyncio.wait_for(_all_ready(pool), 60)
    asked = GenerationRequest(prompt=PROMPT, sampling=SamplingParams(temperature=0, max_tokens=40, logprobs=2))

    async def logprobs(kill: bool) -> list:
        stream = await pool.submit(asked)
        await stream.start()
        if kill:
            while len(stream.progress.tokens) < 3:
                await asyncio.sleep(0.01)
            held_by = next(w.pid for w in pool.workers if w.running)
            os.kill(held_by, signal.SIGKILL)
        events = await asyncio.wait_for(drain(stream), 60)
        return [lp for e in events if isinstance(e, TextDelta) for lp in e.logprobs]

    undisturbed = await logprobs(kill=False)
    assert len(undisturbed) == 40
    assert await logprobs(kill=True) == undisturbed


async def test_a_request_on_each_of_two_workers_that_died_fails_as_poison_and_others_are_served(make_pool):
    pool = await make_pool(workers=2, capacity=1, crash_on="CRASH", token_delay_s=0.02)
    await asyncio.wait_for(_all_ready(pool), 60)
    poison = await pool.submit(request("CRASH now please", max_tokens=50))
    others = [await pool.submit(request(max_tokens=8)) for _ in range(3)]  # one running, two queued
    with pytest.raises(PoisonRequest, match="2 workers of model 'fake' that died"):
        await asyncio.wait_for(drain(poison), 60)
    assert [(await text_of(s))[0] for s in others] == ["four three two one four three two one"] * 3
    assert resumed_count(pool) == 1
    assert resumed_count(pool, "warmserve_poison_requests_total") == 1
    await asyncio.wait_for(_all_ready(pool), 60)
    assert pool.running == pool.waiting == pool.in_flight.value == 0


async def test_a_request_not_taken_over_in_time_fails_as_worker_died(make_pool):
    pool = await make_pool(workers=1, capacity=1, token_delay_s=0.02, queue_timeout_s=0.2)  # shorter than a restart
    await asyncio.wait_for(_all_ready(pool), 60)
    stream = await pool.submit(request(max_tokens=1000))
    await stream.start()
    os.kill(pool.workers[0].pid, signal.SIGKILL)
    with pytest.raises(WorkerDied, match=r"no other worker took it over within 0\.2 s"):
        await asyncio.wait_for(drain(stream), 30)
    assert pool.running == pool.waiting == pool.in_flight.value == 0


async def _all_ready(pool: ModelPool) -> None:
    await pool.wait_for(("ready",))


async def test_a_pools_life_is_published_as_typed_events(make_pool):
    events: list[PoolEvent] = []
    pool = await make_pool(workers=1, events=events)
    assert await pool.wait_for(("ready",), 60) == "ready"
    first_pid = pool.workers[0].pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    # the death is published before the replacement, which becomes ready again
    assert await pool.wait_for(("loading",), 30) == "loading"
    assert await pool.wait_for(("ready",), 60) == "ready"
    await pool.stop()
    states = [(e.previous, e.state) for e in events if isinstance(e, StateChanged)]
    assert states == [
        ("unloaded", "loading"),
        ("loading", "ready"),
        ("ready", "loading"),
        ("loading", "ready"),
        ("ready", "stopping"),
        ("stopping", "unloaded"),
    ]
    workers = [(e.kind, e.pid) for e in events if isinstance(e, WorkerEvent)]
    second_pid = pool.workers[0].pid
    assert first_pid != second_pid
    assert workers == [
        ("started", first_pid),
        ("ready", first_pid),
        ("died", first_pid),
        ("restarted", second_pid),
        ("ready", second_pid),
        ("stopped", second_pid),
    ]
    died = next(e for e in events if isinstance(e, WorkerEvent) and e.kind == "died")
    assert died.reason is not None
    assert "exited with code" in died.reason


async def test_a_pool_whose_workers_keep_failing_turns_unhealthy_and_refuses_at_once(make_pool):
    events: list[PoolEvent] = []
    pool = await make_pool(workers=1, events=events, crash_on_load=True)
    assert await pool.wait_for(("unhealthy",), 60) == "unhealthy"
    assert pool.reason is not None
    assert "while loading" in pool.reason
    with pytest.raises(ModelUnavailable, match="unhealthy"):
        await pool.submit(request())
    kinds = [e.kind for e in events if isinstance(e, WorkerEvent)]
    assert kinds.count("died") >= 3
    assert "restarted" in kinds


async def test_a_load_that_fails_for_good_is_not_retried_and_the_model_is_failed_with_the_reason(make_pool):
    events: list[PoolEvent] = []
    pool = await make_pool(workers=2, events=events, fail_on_load="/models/x.bin is not a GGUF file. Do this.")
    assert await pool.wait_for(("failed",), 60) == "failed"
    assert pool.reason == "/models/x.bin is not a GGUF file. Do this."
    with pytest.raises(ModelFailed, match=r"could not be loaded: /models/x\.bin is not a GGUF file") as refused:
        await pool.submit(request())
    assert refused.value.status_code == 503
    assert refused.value.headers() == {}  # no Retry-After: retrying will not help
    await asyncio.sleep(1.0)  # longer than the first restart's backoff
    kinds = [e.kind for e in events if isinstance(e, WorkerEvent)]
    assert kinds.count("died") == 2
    assert "restarted" not in kinds
    states = [(e.previous, e.state) for e in events if isinstance(e, StateChanged)]
    assert states == [("unloaded", "loading"), ("loading", "failed")]
    assert [w.load_error for w in pool.workers] == [pool.reason, pool.reason]


async def test_a_request_queued_behind_a_dying_worker_runs_on_its_replacement_after_the_resumed_one(make_pool):
    pool = await make_pool(workers=1, capacity=1, token_delay_s=0.02)
    await asyncio.wait_for(_all_ready(pool), 60)
    running = await pool.submit(request(max_tokens=50))
    queued = await pool.submit(request())
    await running.start()
    assert pool.waiting == 1
    pid = pool.workers[0].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # the resumed request goes first, and the death's cleanup never hands either to the dead worker
    finished = asyncio.ensure_future(text_of(running))
    queued_text, _ = await text_of(queued)
    assert finished.done()
    assert (await finished)[1].completion_tokens == 50
    assert queued_text == REVERSED
    assert pool.running == pool.waiting == pool.in_flight.value == 0


async def test_equally_loaded_workers_are_told_apart_by_the_adapters_they_run(make_pool, tmp_path):
    """Requests on two adapters arriving in turn: each worker gets one adapter's (llama.cpp decodes each
    adapter's requests in a call of their own, so a worker running one adapter does one call per step)."""
    pool = await make_pool(workers=2, capacity=4, token_delay_s=0.01)
    await asyncio.wait_for(_all_ready(pool), 60)
    (tmp_path / "lora").write_text("fake adapter")
    for name in ("a", "b"):
        await pool.add_adapter(AdapterSpec(name=name, path=str(tmp_path / "lora")))
    streams = [await pool.submit(replace(request(max_tokens=20), adapter=adapter)) for adapter in ["a", "b", "a", "b"]]
    held = [
        {h.message.request.adapter for h in worker.inflight.values() if isinstance(h.message, Submit)}
        for worker in pool._workers
    ]
    assert sorted(held, key=sorted) == [{"a"}, {"b"}]
    results = await asyncio.gather(*(drain(s) for s in streams))
    texts = ["".join(e.text for e in events if isinstance(e, TextDelta)) for events in results]
    assert [text.split()[0] for text in texts] == ["a", "b", "a", "b"]
