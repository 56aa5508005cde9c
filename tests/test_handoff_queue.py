"""One contract suite for the handoff queue, run against the in-process and Redis backends."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from handoff.factory import make_queue
from handoff.queue import HandoffQueue, InProcessQueue, QueueEntry
from handoff.redis_queue import RedisQueue
from tests.handoff_fixtures import (
    REDIS_URL,
    delete_prefix,
    redis_client,
    redis_prefix,
    unique_prefix,
)

__all__ = ["redis_prefix"]  # the fixture is used by name


class Backend:
    """Opens handles on one shared queue state: one object in process, clients on Redis."""

    def __init__(self, kind: str, prefix: str | None) -> None:
        self.kind = kind
        self.prefix = prefix
        self._handles: list[HandoffQueue] = []

    async def open(self, **options: Any) -> HandoffQueue:
        if self.kind == "in_process":
            if not self._handles:
                self._handles.append(InProcessQueue(**options))
            return self._handles[0]
        queue = RedisQueue.from_url(REDIS_URL, self.prefix or "", **options)
        self._handles.append(queue)
        return queue

    async def close(self) -> None:
        for handle in self._handles:
            await handle.close()


@pytest.fixture(params=["in_process", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    prefix = None
    if request.param == "redis":
        await (await redis_client()).aclose()  # skips, or fails in CI, without Redis
        prefix = unique_prefix()
    opened = Backend(request.param, prefix)
    yield opened
    await opened.close()
    if prefix is not None:
        await delete_prefix(prefix)


@pytest.fixture
async def queue(backend: Backend) -> HandoffQueue:
    return await backend.open()


T0 = 1_764_000_000.0


def entry(conversation_id: str, priority: int = 1, at: float = 0.0, **extra: Any) -> QueueEntry:
    return QueueEntry(conversation_id, priority, T0 + at, **extra)


async def ids(queue: HandoffQueue) -> list[str]:
    return [e.conversation_id for e in await queue.entries()]


# --------------------------------------------------------------------------- ordering


async def test_priority_first_then_waiting_time(queue: HandoffQueue) -> None:
    await queue.enqueue(entry("low", 1, at=1))
    await queue.enqueue(entry("urgent", 5, at=3))
    await queue.enqueue(entry("mid", 3, at=2))
    await queue.enqueue(entry("low-later", 1, at=4))
    assert await ids(queue) == ["urgent", "mid", "low", "low-later"]
    assert [await queue.position(c) for c in ("urgent", "mid", "low", "low-later")] == [1, 2, 3, 4]
    assert await queue.position("unknown") is None


async def test_equal_priority_is_first_come_first_served(queue: HandoffQueue) -> None:
    arrivals = [f"c{i}" for i in range(8)]
    shuffled = arrivals[:]
    random.Random(4).shuffle(shuffled)
    for conversation_id in shuffled:  # insertion order must not matter, only enqueued_at
        await queue.enqueue(entry(conversation_id, 2, at=arrivals.index(conversation_id)))
    assert await ids(queue) == arrivals


async def test_entry_fields_round_trip(queue: HandoffQueue) -> None:
    reasons = ["frustration 0.82 ≥ 0.70 (caps)", "customer tier VIP"]
    await queue.enqueue(entry("c1", 4, at=1.25, reasons=reasons, customer_value=640.5,
                              customer_label="Jane D. (VIP)"))  # fmt: skip
    [stored] = await queue.entries()
    assert stored == QueueEntry("c1", 4, T0 + 1.25, reasons, 640.5, "Jane D. (VIP)", T0 + 1.25)
    await queue.enqueue(entry("c2", 1, at=2))
    assert (await queue.entries())[1].reasons == []


async def test_enqueue_returns_position_and_requeue_keeps_place(queue: HandoffQueue) -> None:
    assert await queue.enqueue(entry("a", 2, at=1)) == 1
    assert await queue.enqueue(entry("b", 2, at=2)) == 2
    # A re-evaluation with a later timestamp and lower priority neither demotes nor delays.
    assert await queue.enqueue(entry("a", 1, at=50, reasons=["asked for a person"])) == 1
    [first, _] = await queue.entries()
    assert (first.priority, first.enqueued_at, first.reasons) == (2, T0 + 1, ["asked for a person"])
    assert await queue.enqueue(entry("b", 3, at=60)) == 1  # a higher priority does count


async def test_remove(queue: HandoffQueue) -> None:
    await queue.enqueue(entry("a"))
    assert await queue.remove("a") is True
    assert await queue.remove("a") is False
    assert await queue.entries() == []


async def test_estimated_wait_uses_median_handle_time_and_free_staff(backend: Backend) -> None:
    queue = await backend.open(handle_time_history=3, default_handle_seconds=240)
    assert await queue.estimated_wait_seconds(2) == pytest.approx(480)  # default, 1 staff min
    for seconds in (1000, 100, 200, 600):  # the oldest (1000) falls out of the last 3
        await queue.record_handle_time(seconds)
    assert sorted(await queue.handle_times()) == [100, 200, 600]
    assert await queue.estimated_wait_seconds(3) == pytest.approx(600)  # 3 × 200 / 1
    await queue.set_presence("ann", "online", 2)
    await queue.set_presence("bob", "online", 1)
    await queue.set_presence("cat", "away", 5)  # away staff do not shorten the wait
    assert await queue.estimated_wait_seconds(3) == pytest.approx(300)  # 3 × 200 / 2
    await queue.enqueue(entry("x"))
    assert (await queue.claim("x", "bob")).ok  # bob is now full
    assert await queue.estimated_wait_seconds(3) == pytest.approx(600)


# --------------------------------------------------------------------------- claims


async def test_twenty_simultaneous_claims_one_winner(backend: Backend) -> None:
    queue = await backend.open()
    staff = [f"staff{i}" for i in range(20)]
    for staff_id in staff:
        await queue.set_presence(staff_id, "online", 3)
    await queue.enqueue(entry("hot", 5))
    # On Redis every claimant has its own client connection, like separate gateways.
    handles = [await backend.open() for _ in staff]
    results = await asyncio.gather(
        *(h.claim("hot", s) for h, s in zip(handles, staff, strict=True))
    )
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    winner = winners[0].staff_id
    assert winner is not None
    assert await queue.assigned_to("hot") == winner
    assert await queue.load(winner) == 1
    assert sum([await queue.load(s) for s in staff]) == 1
    for loser in (r for r in results if not r.ok):
        assert loser.code == "already_assigned"
        assert loser.staff_id == winner
        assert winner in loser.reason
    assert await queue.entries() == []


async def test_claim_failures_have_clear_reasons(queue: HandoffQueue) -> None:
    missing = await queue.claim("nope", "ann")
    assert (missing.ok, missing.code) == (False, "not_queued")
    assert "not waiting" in missing.reason
    await queue.enqueue(entry("c1"))
    offline = await queue.claim("c1", "ghost")
    assert (offline.ok, offline.code) == (False, "staff_not_online")
    assert "ghost is offline" in offline.reason
    await queue.set_presence("ann", "away", 2)
    away = await queue.claim("c1", "ann")
    assert (away.code, away.reason) == ("staff_not_online", "ann is away, not online")
    assert await queue.position("c1") == 1  # a failed claim leaves the entry queued


async def test_capacity_limits(queue: HandoffQueue) -> None:
    await queue.set_presence("ann", "online", 2)
    await queue.set_presence("zero", "online", 0)
    for conversation_id in ("c1", "c2", "c3"):
        await queue.enqueue(entry(conversation_id))
    assert (await queue.claim("c1", "ann")).ok
    assert (await queue.claim("c2", "ann")).ok
    full = await queue.claim("c3", "ann")
    assert (full.ok, full.code) == (False, "at_capacity")
    assert "2/2" in full.reason
    assert (await queue.claim("c3", "zero")).code == "at_capacity"
    assert await queue.load("ann") == 2
    assert await queue.release("c1", "bob") is False  # only the holder releases
    assert await queue.release("c1", "ann") is True
    assert await queue.release("c1", "ann") is False
    assert await queue.load("ann") == 1
    assert await queue.assigned_to("c1") is None
    assert (await queue.claim("c3", "ann")).ok


async def test_requeue_drops_the_assignment(queue: HandoffQueue) -> None:
    await queue.set_presence("ann", "online", 1)
    await queue.enqueue(entry("c1"))
    assert (await queue.claim("c1", "ann")).ok
    assert await queue.enqueue(entry("c1", 2)) == 1  # staff sent it back to the queue
    assert await queue.assigned_to("c1") is None
    assert await queue.load("ann") == 0


# --------------------------------------------------------------------------- presence


async def test_presence_states_and_validation(queue: HandoffQueue) -> None:
    unknown = await queue.presence("nobody")
    assert (unknown.state, unknown.capacity, unknown.last_seen) == ("offline", 0, None)
    await queue.set_presence("ann", "online", 3)
    await queue.set_presence("bob", "away", 2)
    ann = await queue.presence("ann")
    assert (ann.state, ann.capacity, ann.load) == ("online", 3, 0)
    assert ann.last_seen is not None
    assert [s.staff_id for s in await queue.online_staff()] == ["ann"]
    await queue.set_presence("ann", "offline", 3)
    assert (await queue.presence("ann")).state == "offline"
    assert await queue.online_staff() == []
    with pytest.raises(ValueError, match="presence state"):
        await queue.set_presence("ann", "busy", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        await queue.set_presence("ann", "online", -1)


async def test_presence_expires_without_heartbeat(backend: Backend) -> None:
    # Margins of 0.4 s or more, so that a loaded CI machine does not make this flaky.
    queue = await backend.open(presence_ttl_seconds=1.0)
    await queue.set_presence("ann", "online", 2)
    await queue.enqueue(entry("c1"))
    await asyncio.sleep(0.6)
    assert await queue.heartbeat("ann") is True
    await asyncio.sleep(0.6)  # 1.2 s after set_presence, 0.6 s after the heartbeat
    assert (await queue.presence("ann")).state == "online"
    await asyncio.sleep(1.4)
    assert (await queue.presence("ann")).state == "offline"
    assert await queue.online_staff() == []
    assert (await queue.claim("c1", "ann")).code == "staff_not_online"
    assert await queue.auto_assign("c1") is None
    assert await queue.heartbeat("ann") is False  # must announce itself again
    await queue.set_presence("ann", "online", 2)
    assert (await queue.claim("c1", "ann")).ok


# --------------------------------------------------------------------------- routing


async def test_auto_assign_least_loaded_then_longest_idle(queue: HandoffQueue) -> None:
    for staff_id in ("ann", "bob", "cat"):
        await queue.set_presence(staff_id, "online", 3)
    await queue.set_presence("dan", "away", 9)
    for conversation_id in ("w1", "w2", "w3", "n1", "n2", "n3", "n4", "n5"):
        await queue.enqueue(entry(conversation_id))
    assert (await queue.claim("w1", "ann")).ok
    await asyncio.sleep(0.01)
    assert (await queue.claim("w2", "ann")).ok
    await asyncio.sleep(0.01)
    assert (await queue.claim("w3", "bob")).ok
    await asyncio.sleep(0.01)
    # Loads ann 2, bob 1, cat 0 → cat; then bob and cat tie at 1 and bob waited longer.
    assert await queue.auto_assign("n1") == "cat"
    await asyncio.sleep(0.01)
    assert await queue.auto_assign("n2") == "bob"
    await asyncio.sleep(0.01)
    assert await queue.auto_assign("n3") == "cat"
    await asyncio.sleep(0.01)
    # All at 2: ann's last assignment is the oldest.
    assert await queue.auto_assign("n4") == "ann"
    assert await queue.assigned_to("n4") == "ann"
    assert [await queue.load(s) for s in ("ann", "bob", "cat", "dan")] == [3, 2, 2, 0]
    assert await queue.auto_assign("unknown") is None
    for staff_id in ("bob", "cat"):
        await queue.set_presence(staff_id, "offline", 3)
    assert await queue.auto_assign("n5") is None  # ann is full, dan is away
    assert await queue.position("n5") == 1


async def test_transfer(queue: HandoffQueue) -> None:
    await queue.set_presence("ann", "online", 2)
    await queue.set_presence("bob", "online", 1)
    await queue.set_presence("cat", "away", 2)
    for conversation_id in ("c1", "c2"):
        await queue.enqueue(entry(conversation_id))
    assert (await queue.claim("c1", "ann")).ok
    assert (await queue.claim("c2", "ann")).ok

    wrong = await queue.transfer("c1", "bob", "cat")
    assert (wrong.ok, wrong.code, wrong.staff_id) == (False, "not_assigned", "ann")
    assert (await queue.transfer("c1", "ann", "ann")).code == "same_staff"
    assert (await queue.transfer("c1", "ann", "cat")).code == "staff_not_online"
    moved = await queue.transfer("c1", "ann", "bob")
    assert (moved.ok, moved.code, moved.staff_id) == (True, "transferred", "bob")
    assert await queue.assigned_to("c1") == "bob"
    assert (await queue.load("ann"), await queue.load("bob")) == (1, 1)
    full = await queue.transfer("c2", "ann", "bob")
    assert (full.ok, full.code) == (False, "at_capacity")
    assert await queue.assigned_to("c2") == "ann"


# --------------------------------------------------------------------------- SLA


async def test_overdue_reannounces_once_per_period_and_raises_priority(
    queue: HandoffQueue,
) -> None:
    now = T0 + 1000
    await queue.enqueue(entry("old", 2, at=1000 - 100))
    await queue.enqueue(entry("new", 2, at=1000 - 10))
    await queue.enqueue(entry("vip", 3, at=1000 - 5))

    first = await queue.overdue(now, sla_seconds=60)
    assert [(e.conversation_id, e.priority, e.announced_at) for e in first] == [("old", 3, now)]
    # Same priority as vip now, and enqueued earlier: it moves to the front.
    assert await ids(queue) == ["old", "vip", "new"]
    assert await queue.overdue(now + 30, sla_seconds=60) == []  # announced 30 s ago only

    later = await queue.overdue(now + 60, sla_seconds=60)
    assert {e.conversation_id: e.priority for e in later} == {"old": 4, "new": 3, "vip": 4}
    assert await ids(queue) == ["old", "vip", "new"]
    assert all(e.announced_at == now + 60 for e in await queue.entries())
    assert (await queue.entries())[0].enqueued_at == T0 + 900  # waiting time is unchanged


async def test_concurrent_overdue_scans_announce_once(backend: Backend) -> None:
    queue = await backend.open()
    await queue.enqueue(entry("late", 1, at=0))
    handles = [await backend.open() for _ in range(5)]
    results = await asyncio.gather(*(h.overdue(T0 + 120, 60) for h in handles))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    assert (await queue.entries())[0].priority == 2


# --------------------------------------------------------------------------- Redis only


async def test_redis_state_survives_a_restart(redis_prefix: str) -> None:
    before = RedisQueue.from_url(REDIS_URL, redis_prefix, presence_ttl_seconds=60)
    await before.set_presence("ann", "online", 2)
    await before.enqueue(entry("waiting", 3, reasons=["asked for a person"]))
    await before.enqueue(entry("taken", 1))
    assert (await before.claim("taken", "ann")).ok
    await before.record_handle_time(180)
    await before.close()

    after = RedisQueue.from_url(REDIS_URL, redis_prefix, presence_ttl_seconds=60)
    try:
        assert [e.conversation_id for e in await after.entries()] == ["waiting"]
        assert (await after.entries())[0].reasons == ["asked for a person"]
        assert await after.assigned_to("taken") == "ann"
        assert await after.load("ann") == 1
        assert (await after.presence("ann")).state == "online"
        assert await after.handle_times() == [180.0]
    finally:
        await after.close()


async def test_prefixes_isolate_deployments(redis_prefix: str) -> None:
    one = RedisQueue.from_url(REDIS_URL, redis_prefix + "a:")
    two = RedisQueue.from_url(REDIS_URL, redis_prefix + "b:")
    try:
        await one.enqueue(entry("c1"))
        assert await two.entries() == []
    finally:
        await one.close()
        await two.close()


async def test_make_queue_picks_the_backend(redis_prefix: str) -> None:
    assert isinstance(make_queue(None), InProcessQueue)
    queue = make_queue(REDIS_URL, redis_prefix, presence_ttl_seconds=5)
    try:
        assert isinstance(queue, RedisQueue)
        assert queue.presence_ttl_seconds == 5
        await queue.enqueue(QueueEntry("c1", 1, time.time()))
        assert await queue.position("c1") == 1
    finally:
        await queue.close()
