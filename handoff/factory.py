"""Pick the queue backend: Redis when a URL is configured, otherwise in process."""

from __future__ import annotations

from typing import Any

from handoff.queue import HandoffQueue, InProcessQueue


def make_queue(redis_url: str | None, prefix: str = "tandem:", **options: Any) -> HandoffQueue:
    """`options` go to both backends: presence_ttl_seconds, handle_time_history, ..."""
    if redis_url:
        from handoff.redis_queue import RedisQueue

        return RedisQueue.from_url(redis_url, prefix, **options)
    return InProcessQueue(**options)
