"""Sliding-window counts, and the staff login throttle built on them.

Two backends share one small interface: in-process (one gateway worker) and Redis (every
worker sees the same counts). `make_rate_limiter` picks Redis when REDIS_URL is set.
Keys are hashed before they are stored, so Redis holds no e-mail addresses.

Logins are slowed, never locked: failed attempts make the *same client* wait longer and
longer (per account and overall), while failures from elsewhere only add a short pause
to an account's logins. Nobody can keep a member of staff out by failing on purpose.
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

    async def add(self, key: str) -> None:
        """Count one event whatever the limit (failures are always recorded)."""
        ...

    async def recent(self, key: str) -> tuple[int, float]:
        """Events within the window, and seconds since the newest (inf when none)."""
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
            hits = self._live_hits(key, now)
            if len(hits) >= self.limit:
                return Decision(False, hits[0] + self.window - now)
            hits.append(now)
            return Decision(True)

    async def add(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            self._live_hits(key, now).append(now)

    async def recent(self, key: str) -> tuple[int, float]:
        now = self._clock()
        with self._lock:
            hits = self._live_hits(key, now)
            return len(hits), (now - hits[-1]) if hits else math.inf

    def _live_hits(self, key: str, now: float) -> deque[float]:
        if len(self._hits) >= self.SWEEP_AT:
            self._sweep(now)
        hits = self._hits.setdefault(_digest(key), deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

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
# Count one event unconditionally (limit -1), or read {count, ms since the newest} (limit 0).
_RECORD = """
local key = KEYS[1]
local mode = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
if mode < 0 then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window_ms)
  return {1, 0}
end
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if #newest == 0 then return {0, -1} end
return {redis.call('ZCARD', key), now - tonumber(newest[2])}
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
        self._record = client.register_script(_RECORD)
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

    async def add(self, key: str) -> None:
        await self._fallback.add(key)  # kept too, in case Redis goes away
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        window_ms = math.ceil(self.window * 1000)
        try:
            await self._record(keys=[self._key(key)], args=[-1, window_ms, member])
        except RedisError as error:
            logger.warning("Redis rate limiter unavailable, counting in-process: %s", error)

    async def recent(self, key: str) -> tuple[int, float]:
        try:
            count, age_ms = await self._record(
                keys=[self._key(key)], args=[0, math.ceil(self.window * 1000), ""]
            )
        except RedisError as error:
            logger.warning("Redis rate limiter unavailable, counting in-process: %s", error)
            return await self._fallback.recent(key)
        return int(count), (int(age_ms) / 1000 if int(age_ms) >= 0 else math.inf)

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


def login_delay(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after the latest failure: none for the first `free`, then 1, 2, 4…"""
    if failures < free:
        return 0.0
    return float(min(cap, 2.0 ** min(failures - free, 30)))


class LoginThrottle:
    """Progressive delays for staff logins, counted over failed attempts only.

    - per account *and* client: after `free` failures (login_rate_limit_per_minute) the
      next attempt from that client for that account must wait 1 s, then 2, 4… up to
      five minutes after the latest failure; earlier attempts get 429 with Retry-After.
    - per client, over all accounts (password spraying): the same, from 4 × `free`.
    - per account, from any client: never refused, only a short pause (at most
      `ACCOUNT_PAUSE_CAP` s) before the password is checked, so that failures from
      elsewhere, rotating addresses included, cannot lock the account's owner out.
    A correct password clears that account's counts; the client's spraying count stays.
    """

    WINDOW = 15 * 60.0
    CLIENT_DELAY_CAP = 300.0
    ACCOUNT_PAUSE_CAP = 2.0

    def __init__(self, limiter: RateLimiter, free_failures: int = 5) -> None:
        self.limiter = limiter
        self.free = free_failures

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(
            make_rate_limiter(settings, limit=1, window=cls.WINDOW),
            free_failures=settings.login_rate_limit_per_minute,
        )

    @staticmethod
    def _keys(email: str, client: str | None) -> dict[str, str]:
        account = email.strip().lower()
        keys = {"account": "login:account:" + account}
        if client:
            keys["pair"] = f"login:pair:{account}|{client}"
            keys["client"] = "login:client:" + client
        return keys

    async def check(self, email: str, client: str | None) -> Decision:
        """May this attempt go ahead now? `retry_after` of an allowed one is the pause."""
        keys = self._keys(email, client)
        waits = [0.0]
        for kind, free in (("pair", self.free), ("client", 4 * self.free)):
            if kind in keys:
                failures, age = await self.limiter.recent(keys[kind])
                waits.append(login_delay(failures, free, self.CLIENT_DELAY_CAP) - age)
        if max(waits) > 0:
            return Decision(False, max(waits))
        failures, _ = await self.limiter.recent(keys["account"])
        pause = 0.0 if failures < self.free else 0.25 * 2.0 ** min(failures - self.free, 10)
        return Decision(True, min(pause, self.ACCOUNT_PAUSE_CAP))

    async def failed(self, email: str, client: str | None) -> None:
        for key in self._keys(email, client).values():
            await self.limiter.add(key)

    async def succeeded(self, email: str, client: str | None) -> None:
        keys = self._keys(email, client)
        for kind in ("account", "pair"):
            if kind in keys:
                await self.limiter.reset(keys[kind])

    async def aclose(self) -> None:
        await self.limiter.aclose()
