"""One contract suite for the event bus, run against InProcessBus and RedisBus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tandem.bus import Event, InProcessBus, RedisBus, conversation_topic, make_bus
from tests.handoff_fixtures import REDIS_URL, delete_prefix, redis_client, unique_prefix

Buses = tuple[InProcessBus | RedisBus, InProcessBus | RedisBus]


@pytest.fixture(params=["in_process", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[Buses]:
    """Two handles on one bus: the same object in process, two "processes" on Redis."""
    if request.param == "in_process":
        bus = InProcessBus(max_queued=3)
        yield bus, bus
        return
    await (await redis_client()).aclose()  # skips, or fails in CI, without Redis
    prefix = unique_prefix()
    one = RedisBus.from_url(REDIS_URL, prefix, max_queued=3)
    two = RedisBus.from_url(REDIS_URL, prefix, max_queued=3)
    yield one, two
    await one.close()
    await two.close()
    await delete_prefix(prefix)


async def next_event(queue: asyncio.Queue[Event]) -> Event:
    return await asyncio.wait_for(queue.get(), timeout=2)


async def settle() -> None:
    # Redis delivers asynchronously; give the reader a moment before asserting absence.
    await asyncio.sleep(0.1)


async def test_subscriber_receives_published_events_in_order(buses: Buses) -> None:
    bus, _ = buses
    topic = conversation_topic("c1")
    async with bus.subscribe(topic) as queue:
        event = {"type": "message", "text": "hi ✓", "data": {"n": [1, 2.5, None, True]}}
        await bus.publish(topic, event)
        await bus.publish(topic, {"type": "state", "to": "queued"})
        assert await next_event(queue) == event
        assert (await next_event(queue))["to"] == "queued"


async def test_events_cross_between_two_handles(buses: Buses) -> None:
    """On Redis these are two separate clients: two gateway processes see each other."""
    customer_side, staff_side = buses
    async with (
        customer_side.subscribe("staff") as staff_feed,
        staff_side.subscribe(conversation_topic("c9")) as conversation_feed,
    ):
        await customer_side.publish("staff", {"type": "queued", "conversation": "c9"})
        await staff_side.publish(conversation_topic("c9"), {"type": "reply", "text": "Hello!"})
        assert await next_event(staff_feed) == {"type": "queued", "conversation": "c9"}
        assert await next_event(conversation_feed) == {"type": "reply", "text": "Hello!"}


async def test_topics_are_isolated_and_every_subscriber_gets_a_copy(buses: Buses) -> None:
    one, two = buses
    async with (
        one.subscribe("staff") as first,
        two.subscribe("staff") as second,
        one.subscribe("other") as other,
    ):
        await two.publish("staff", {"n": 1})
        assert await next_event(first) == {"n": 1}
        assert await next_event(second) == {"n": 1}
        await settle()
        assert other.empty()


async def test_publish_without_subscribers_and_after_unsubscribe(buses: Buses) -> None:
    bus, _ = buses
    await bus.publish("nobody", {"n": 0})  # no error, nobody listening
    async with bus.subscribe("t") as queue:
        pass
    await bus.publish("t", {"n": 1})
    await settle()
    assert queue.empty()  # a closed subscription receives nothing more
    async with bus.subscribe("t") as again:
        await bus.publish("t", {"n": 2})
        assert await next_event(again) == {"n": 2}


async def test_a_slow_subscriber_loses_its_oldest_events(buses: Buses) -> None:
    one, two = buses
    async with one.subscribe("burst") as queue:
        for n in range(5):
            await two.publish("burst", {"n": n})
        await settle()
        received = [queue.get_nowait()["n"] for _ in range(queue.qsize())]
    assert received == [2, 3, 4]  # max_queued=3 keeps the newest


async def test_make_bus_picks_the_backend() -> None:
    assert isinstance(make_bus(None), InProcessBus)
    bus = make_bus(REDIS_URL, unique_prefix())
    assert isinstance(bus, RedisBus)
    await bus.close()
