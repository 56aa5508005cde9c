"""The event bus: every stored message and state change is published here once.

The in-process bus serves one gateway process; a Redis backend with the same
interface serves several (see handoff). Subscribers get their own queue so that a
slow WebSocket never blocks the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

Event = dict[str, Any]


class EventBus(Protocol):
    async def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str) -> AsyncIterator[asyncio.Queue[Event]]: ...


class InProcessBus:
    def __init__(self, max_queued: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._max_queued = max_queued

    async def publish(self, topic: str, event: Event) -> None:
        for queue in list(self._subscribers.get(topic, ())):
            if queue.full():
                # A subscriber that stopped reading loses its oldest event, not ours.
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_queued)
        self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[topic].discard(queue)
            if not self._subscribers[topic]:
                del self._subscribers[topic]


class RedisBus:
    """The bus over Redis pub/sub: every gateway process sees every other one's events.

    Events travel as JSON (so they must be JSON-safe). Each subscription holds its own
    pub/sub connection and a reader task that copies messages into the subscriber's
    queue; as in process, a full queue drops its oldest event. Delivery is at most once:
    a process that is not subscribed when an event is published never sees it, so state
    lives in the database and the queue, and events only say "look again".
    """

    def __init__(self, client: Redis, prefix: str = "tandem:", max_queued: int = 1000) -> None:
        self.client = client
        self.channel_prefix = f"{prefix}bus:"
        self._max_queued = max_queued
        self._owns_client = False

    @classmethod
    def from_url(cls, url: str, prefix: str = "tandem:", max_queued: int = 1000) -> RedisBus:
        from redis.asyncio import Redis

        bus = cls(Redis.from_url(url, decode_responses=True), prefix, max_queued)
        bus._owns_client = True
        return bus

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def publish(self, topic: str, event: Event) -> None:
        await self.client.publish(self.channel_prefix + topic, json.dumps(event, default=str))

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[asyncio.Queue[Event]]:
        channel = self.channel_prefix + topic
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_queued)
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(channel)
            # Wait for Redis to confirm, so an event published right after we yield arrives.
            while True:
                reply = await pubsub.get_message(timeout=5.0)
                if reply is None:
                    raise ConnectionError(f"Redis did not confirm the subscription to {channel}")
                if reply["type"] == "subscribe":
                    break
            reader = asyncio.create_task(self._read(pubsub, queue), name=f"bus:{topic}")
            try:
                yield queue
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                with contextlib.suppress(Exception):
                    await pubsub.unsubscribe(channel)
        finally:
            await pubsub.aclose()

    async def _read(self, pubsub: PubSub, queue: asyncio.Queue[Event]) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            data = message["data"]
            try:
                event = json.loads(data.decode() if isinstance(data, bytes) else data)
            except ValueError:
                log.warning("ignored a non-JSON event on %s", message.get("channel"))
                continue
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)


def make_bus(redis_url: str | None, prefix: str = "tandem:") -> InProcessBus | RedisBus:
    """RedisBus when a Redis URL is configured (several processes), else InProcessBus."""
    return RedisBus.from_url(redis_url, prefix) if redis_url else InProcessBus()


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"
