"""The event feed and the state machine under it, without any worker."""

from __future__ import annotations

import asyncio

import pytest

from warmserve.pool.events import EventHub, ModelStatus, PoolEvent, Snapshot, StateChanged, WorkerEvent
from warmserve.pool.lifecycle import InvalidTransition, Lifecycle
from warmserve.pool.watch import Watched


def snapshot() -> Snapshot:
    return Snapshot((ModelStatus("m", "ready", 1),))


async def test_a_subscriber_gets_a_snapshot_then_every_event_in_order():
    hub = EventHub(snapshot)
    feed = hub.subscribe()
    first = await anext(feed)
    assert isinstance(first, Snapshot)
    assert first.models == (ModelStatus("m", "ready", 1),)
    published: list[PoolEvent] = [
        StateChanged("m", "draining", "ready"),
        WorkerEvent("m", 0, "stopped", pid=42),
        StateChanged("m", "stopping", "draining"),
    ]
    for event in published:
        hub.publish(event)
    assert [await anext(feed) for _ in published] == published
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(feed)


async def test_events_before_a_subscription_are_not_replayed_and_each_subscriber_gets_its_own_copy():
    hub = EventHub(snapshot)
    hub.publish(StateChanged("m", "loading", "unloaded"))
    feeds = [hub.subscribe(), hub.subscribe()]
    for feed in feeds:
        assert isinstance(await anext(feed), Snapshot)
    later = StateChanged("m", "ready", "loading")
    hub.publish(later)
    for feed in feeds:
        assert await anext(feed) is later


async def test_a_subscriber_that_stops_reading_is_dropped_instead_of_growing_without_bound():
    hub = EventHub(snapshot)
    feed = hub.subscribe()
    await anext(feed)
    for i in range(1500):
        hub.publish(WorkerEvent("m", 0, "ready", pid=i))
    received = await asyncio.wait_for(_all(feed), 5)  # ends: the hub dropped it
    assert 0 < len(received) <= 1000


async def test_leaving_a_subscription_unsubscribes_it():
    hub = EventHub(snapshot)
    feed = hub.subscribe()
    await anext(feed)
    await feed.aclose()
    hub.publish(StateChanged("m", "loading", "unloaded"))  # nobody is listening: nothing queues up
    assert not hub._subscribers


def test_the_state_machine_publishes_changes_and_refuses_an_invalid_one():
    published: list[PoolEvent] = []
    lifecycle = Lifecycle("m", published.append)
    lifecycle.move("loading")
    lifecycle.move("loading")  # no change, no event
    lifecycle.move("unhealthy", "it keeps crashing")
    assert [(e.previous, e.state, e.reason) for e in published if isinstance(e, StateChanged)] == [
        ("unloaded", "loading", None),
        ("loading", "unhealthy", "it keeps crashing"),
    ]
    assert lifecycle.reason == "it keeps crashing"
    lifecycle.move("stopping")
    with pytest.raises(InvalidTransition, match="stopping -> ready"):
        lifecycle.move("ready")  # stopping leads only to unloaded


async def test_waiting_for_a_state_wakes_on_the_change_and_gives_up_at_the_timeout():
    lifecycle = Lifecycle("m", lambda _: None)
    lifecycle.move("loading")
    waiter = asyncio.create_task(lifecycle.wait_for(("ready",), timeout_s=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    lifecycle.move("ready")
    assert await asyncio.wait_for(waiter, 5) == "ready"
    assert await lifecycle.wait_for(("unloaded",), timeout_s=0.05) == "ready"


async def test_a_watched_value_wakes_every_waiter_whose_condition_became_true():
    count = Watched(3)
    zero = asyncio.create_task(count.wait_for(lambda n: n == 0))
    small = asyncio.create_task(count.wait_for(lambda n: n < 3))
    await asyncio.sleep(0)
    count.set(2)
    assert await asyncio.wait_for(small, 5) == 2
    await asyncio.sleep(0)
    assert not zero.done()
    count.set(0)
    assert await asyncio.wait_for(zero, 5) == 0


async def _all(feed) -> list:
    return [event async for event in feed]


async def test_a_closed_hub_ends_later_subscriptions_after_their_snapshot():
    hub = EventHub(snapshot)
    hub.close()
    assert [type(event) for event in await asyncio.wait_for(_all(hub.subscribe()), 5)] == [Snapshot]
