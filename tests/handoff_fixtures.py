"""Fixtures for the handoff and bus contract suites: real Redis, one key prefix per test.

Redis is real. Where it is missing, the Redis cases are skipped on a developer's machine
and fail in CI (TANDEM_REQUIRE_SERVICES=1), as in conftest.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("TANDEM_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TANDEM_REQUIRE_SERVICES=1: services are required)")
    pytest.skip(reason)


def unique_prefix() -> str:
    return f"tandem-test-{uuid.uuid4().hex[:10]}:"


async def redis_client() -> Redis:
    """A connected client, or skip/fail the test when Redis is unreachable."""
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as error:
        await client.aclose()
        missing_service(f"Redis is not reachable at {REDIS_URL}: {error}")
    return client


async def delete_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the real Redis, with every key under it deleted afterwards."""
    client = await redis_client()
    await client.aclose()
    prefix = unique_prefix()
    yield prefix
    await delete_prefix(prefix)
