"""Abuse limits with the `limits` package: moving windows, in memory or on Redis.

In memory by default (one process); with REDIS_URL every gateway process (and the action
server) counts in the same Redis, under the install's key prefix. A limit that is hit
answers how long to wait, for a 429 with Retry-After.

The keys are a client address (see bot/clients.py), a conversation id or a socket; an IPv6
client is counted per /64, the block one subscriber usually gets.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits import storage as sync_storage
from limits import strategies as sync_strategies
from limits.aio import storage as async_storage
from limits.aio import strategies as async_strategies

from tandem.config import Settings

# Settings that lift every limit, for a test stack or a benchmark where one client (the
# test) does the work of many customers.
LIFTED_LIMITS: dict[str, int] = {
    "limit_conversations_per_minute": 1_000_000,
    "limit_messages_per_minute": 1_000_000,
    "limit_client_messages_per_minute": 1_000_000,
    "limit_ws_frames_per_minute": 1_000_000,
    "limit_order_lookups_per_hour": 1_000_000,
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds until one more is allowed


class RateLimited(Exception):
    """A limit was hit; `detail` is fit to show and `retry_after` goes in Retry-After."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = max(1, retry_after)


def client_key(address: str) -> str:
    """What a client address is counted as (IPv6: its /64)."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def client_tag(key: str, secret: str) -> str:
    """A client key as stored and sent to the actions: keyed, so it gives no address back."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:24]


def _rules(settings: Settings) -> dict[str, RateLimitItem]:
    return {
        "conversation": RateLimitItemPerMinute(settings.limit_conversations_per_minute),
        "message": RateLimitItemPerMinute(settings.limit_messages_per_minute),
        "client_message": RateLimitItemPerMinute(settings.limit_client_messages_per_minute),
        "frame": RateLimitItemPerMinute(settings.limit_ws_frames_per_minute),
        "order_lookup": RateLimitItemPerHour(settings.limit_order_lookups_per_hour),
    }


def _retry_after(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class AbuseLimits:
    """The gateway's limits (async)."""

    def __init__(self, settings: Settings) -> None:
        self.rules = _rules(settings)
        if settings.redis_url:
            self.storage: async_storage.Storage = async_storage.RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=settings.redis_prefix + "limits",
            )
        else:
            self.storage = async_storage.MemoryStorage()
        self.limiter = async_strategies.MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str, key: str) -> Verdict:
        item = self.rules[rule]
        if await self.limiter.hit(item, rule, key):
            return Verdict(True)
        stats = await self.limiter.get_window_stats(item, rule, key)
        return Verdict(False, _retry_after(stats.reset_time))

    async def check(self, rule: str, key: str, detail: str) -> None:
        """Count one; RateLimited (with the wait in the detail) when over the limit."""
        verdict = await self.hit(rule, key)
        if not verdict.allowed:
            raise RateLimited(
                f"{detail} Please wait {verdict.retry_after} s.", verdict.retry_after
            )


class OrderLookupLimit:
    """Failed order checks per client, across conversations (the action server; sync)."""

    def __init__(self, settings: Settings) -> None:
        self.item = _rules(settings)["order_lookup"]
        if settings.redis_url:
            store: sync_storage.Storage = sync_storage.RedisStorage(
                settings.redis_url, key_prefix=settings.redis_prefix + "limits"
            )
        else:
            store = sync_storage.MemoryStorage()
        self.limiter = sync_strategies.MovingWindowRateLimiter(store)

    def exhausted(self, client: str) -> bool:
        """True when this client may not try another order check now."""
        return not self.limiter.test(self.item, "order_lookup", client_key(client))

    def failed(self, client: str) -> None:
        self.limiter.hit(self.item, "order_lookup", client_key(client))
