"""Sliding-window rate limits for staff logins.

Two backends share one small interface: in-process (one gateway worker) and Redis (every
worker sees the same counts). `make_rate_limiter` picks Redis when REDIS_URL is set.
Keys are hashed before they are stored, so Redis holds no e-mail addresses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from tandem.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the next attempt would be allowed

    @property
    def retry_after_header(self) -> str:
        """The Retry-After value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    """At most `limit` hits per key within any `window` seconds."""

    limit: int
    window: float

    async def hit(self, key: str) -> Decision:
        """Count one attempt if it is allowed; a refused attempt is not counted."""
        ...

    async def reset(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class InMemoryRateLimiter:
    """A sliding log of hit times per key, for a single process."""

    # Sweep idle keys once this many are held, so a flood of distinct e-mails stays bounded.
    SWEEP_AT = 10_000

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        # The gateway is one event loop, but sync callers (threads) may share the limiter.
        self._lock = threading.Lock()

    async def hit(self, key: str) -> Decision:
        return self.hit_sync(key)

    def hit_sync(self, key: str) -> Decision:
        now = self._clock()
        with self._lock:
            if len(self._hits) >= self.SWEEP_AT:
                self._sweep(now)
            hits = self._hits.setdefault(_digest(key), deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return Decision(False, hits[0] + self.window - now)
            hits.append(now)
            return Decision(True)

    def _sweep(self, now: float) -> None:
        stale = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]

    async def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(_digest(key), None)

    async def aclose(self) -> None:
        return None


# One round trip, atomic across workers. Redis's own clock is used so that workers with
# drifting clocks still agree. Returns {allowed (0/1), retry_after_ms}.
_SLIDING_WINDOW = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window_ms - now}
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window_ms)
return {1, 0}
"""


class RedisRateLimiter:
    """A sorted set of hit times per key in Redis, shared by every gateway worker.

    When Redis is unreachable the limiter keeps working in-process and logs it: a login
    page that fails because the cache is down would lock out every member of staff.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        limit: int,
        window: float,
        prefix: str = "tandem:ratelimit:",
    ) -> None:
        self.limit = limit
        self.window = window
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW)
        self._fallback = InMemoryRateLimiter(limit, window)

    @classmethod
    def from_url(cls, url: str, limit: int, window: float, **kwargs: str) -> RedisRateLimiter:
        client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, limit, window, **kwargs)

    def _key(self, key: str) -> str:
        return self._prefix + _digest(key)

    async def hit(self, key: str) -> Decision:
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        try:
            allowed, retry_ms = await self._script(
                keys=[self._key(key)],
                args=[self.limit, math.ceil(self.window * 1000), member],
            )
        except RedisError as error:
            logger.warning("Redis rate limiter unavailable, limiting in-process: %s", error)
            return await self._fallback.hit(key)
        return Decision(bool(allowed), max(0, int(retry_ms)) / 1000)

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._client.delete(self._key(key))
        except RedisError as error:
            logger.warning("Redis rate limiter unavailable, could not reset a key: %s", error)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_rate_limiter(settings: Settings, *, limit: int, window: float) -> RateLimiter:
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, limit, window)
    return InMemoryRateLimiter(limit, window)


class LoginThrottle:
    """Login attempts per e-mail and per client IP, `login_rate_limit_per_minute` each.

    Both keys count: per e-mail stops guessing one account's password from many
    addresses, per IP stops one address spraying passwords over many accounts.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(
            make_rate_limiter(settings, limit=settings.login_rate_limit_per_minute, window=60)
        )

    async def attempt(self, email: str, client_ip: str | None) -> Decision:
        """Count a login attempt; a refusal carries the longer of the two waits."""
        decisions = [await self.limiter.hit("login:email:" + email.strip().lower())]
        if client_ip:
            decisions.append(await self.limiter.hit("login:ip:" + client_ip))
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return Decision(False, max(d.retry_after for d in refused))
        return Decision(True)

    async def succeeded(self, email: str) -> None:
        """A correct password clears that account's count (the IP's count stays)."""
        await self.limiter.reset("login:email:" + email.strip().lower())

    async def aclose(self) -> None:
        await self.limiter.aclose()
