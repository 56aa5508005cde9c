"""The event bus: every stored message and state change is published here once.

The in-process bus serves one gateway process; a Redis backend with the same
interface serves several (see handoff). Subscribers get their own queue so that a
slow WebSocket never blocks the publisher.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

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


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"
