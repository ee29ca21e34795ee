"""ManagedModel: load and unload while requests flow; every request completes or fails cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from warmserve.config import ModelSpec
from warmserve.errors import ModelUnloading, WarmServeError
from warmserve.generation import Finished, GenerationRequest, SamplingParams
from warmserve.metrics import Metrics
from warmserve.model_options import FakeOptions
from warmserve.pool import ManagedModel, ModelPool, Pool
from warmserve.pool.events import Publish, StateChanged, WorkerEvent


def request(prompt: str = "a b c", max_tokens: int = 5) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens))


@pytest.fixture
async def managed() -> AsyncIterator[Any]:
    models: list[ManagedModel] = []
    built: list[Pool] = []

    def make(**options: Any) -> ManagedModel:
        fake = FakeOptions(**options.pop("fake", {}))
        spec = ModelSpec(name="fake", backend="fake", workers=1, n_ctx=100_000, fake=fake, **options)

        def make_pool(spec: ModelSpec, metrics: Metrics, publish: Publish) -> Pool:
            built.append(ModelPool(spec, "warning", metrics, publish))
            return built[-1]

        models.append(ManagedModel(spec, make_pool, Metrics(), make.events.append))
        return models[-1]

    make.built = built  # type: ignore[attr-defined]
    make.events = []  # type: ignore[attr-defined]
    yield make
    for model in models:
        await model.stop()


async def outcome(model: ManagedModel, req: GenerationRequest) -> str:
    """'finished' or the error code; never hangs (the caller bounds it)."""
    try:
        stream = await model.submit(req)
        events = [event async for event in stream]
    except WarmServeError as exc:
        return exc.code
    assert isinstance(events[-1], Finished)
    return "finished"


async def test_requests_racing_an_unload_each_finish_or_get_model_unloading(managed):
    model = managed(fake={"token_delay_s": 0.01, "capacity": 2})
    await model.load()
    assert await model.wait_loaded(60) == "ready"

    async def client(i: int) -> str:
        await asyncio.sleep(0.005 * i)
        return await outcome(model, request(f"r{i} x y", max_tokens=10))

    clients = [asyncio.create_task(client(i)) for i in range(30)]
    await asyncio.sleep(0.05)
    unloading = model.unload(drain_timeout_s=60)
    results = await asyncio.wait_for(asyncio.gather(*clients), 60)
    await asyncio.wait_for(unloading, 60)
    assert set(results) <= {"finished", "model_unloading"}
    assert "finished" in results
    assert "model_unloading" in results
    # requests admitted before the unload all finished: the refusals are a suffix in time
    first_refused = results.index("model_unloading")
    assert all(r == "model_unloading" for r in results[first_refused:])
    assert model.state == "unloaded"
    assert model.workers == []


async def test_concurrent_first_requests_share_one_lazy_load(managed):
    model = managed(lazy=True, fake={"load_delay_s": 0.3})
    assert model.state == "unloaded"
    results = await asyncio.wait_for(asyncio.gather(*(outcome(model, request()) for _ in range(5))), 60)
    assert results == ["finished"] * 5
    assert len(managed.built) == 1


async def test_a_request_waiting_for_a_lazy_load_gets_a_clean_error_when_the_model_is_removed(managed):
    model = managed(lazy=True, fake={"load_delay_s": 0.5})
    waiting = asyncio.create_task(outcome(model, request()))
    await asyncio.sleep(0)  # it has started the load
    assert model.waiting == 1
    removing = model.unload(drain_timeout_s=0, remove=True)
    with pytest.raises(ModelUnloading):
        await model.submit(request())
    assert await asyncio.wait_for(waiting, 60) in ("finished", "shutting_down", "model_unloading")
    await asyncio.wait_for(removing, 60)
    assert model.removed
    with pytest.raises(ModelUnloading):
        await model.submit(request())


async def test_a_request_longer_than_the_drain_timeout_is_ended_with_an_error_not_left_hanging(managed):
    model = managed(fake={"token_delay_s": 0.02})
    await model.load()
    stream = await model.submit(request(max_tokens=50_000))
    await stream.start()
    await asyncio.wait_for(model.unload(drain_timeout_s=0.2), 60)
    with pytest.raises(ModelUnloading, match="drain timeout"):
        await asyncio.wait_for(_read_all(stream), 30)
    assert model.state == "unloaded"


async def _read_all(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_a_request_during_an_idle_unload_waits_and_loads_the_model_again(managed):
    model = managed(idle_unload_s=600)
    await model.load()
    assert await model.wait_loaded(60) == "ready"
    unloading = model.unload(drain_timeout_s=0, idle=True)
    assert model.state == "draining"
    assert await asyncio.wait_for(outcome(model, request()), 60) == "finished"
    assert unloading.done()
    assert len(managed.built) == 2


async def test_load_and_unload_publish_each_state_change_of_the_model(managed):
    model = managed()
    await model.load()
    assert await model.wait_loaded(60) == "ready"
    await asyncio.wait_for(model.unload(drain_timeout_s=5), 60)
    changes = [(e.previous, e.state) for e in managed.events if isinstance(e, StateChanged)]
    assert changes == [
        ("unloaded", "loading"),
        ("loading", "ready"),
        ("ready", "draining"),
        ("draining", "stopping"),
        ("stopping", "unloaded"),
    ]
    kinds = [e.kind for e in managed.events if isinstance(e, WorkerEvent)]
    assert kinds == ["started", "ready", "stopped"]


async def test_an_idle_model_unloads_itself_once_nothing_came_for_its_idle_time(managed):
    model = managed(idle_unload_s=0.3)
    await model.load()
    assert await model.wait_loaded(60) == "ready"
    assert await outcome(model, request()) == "finished"
    assert await model.wait_for(("unloaded",), 30) == "unloaded"
    assert await outcome(model, request()) == "finished"  # and loads again on the next request
    assert len(managed.built) == 2
