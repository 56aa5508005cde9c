"""Staff accounts and authentication: storage (SQLite and PostgreSQL), passwords, sessions,
CSRF, login rate limits (in-process and real Redis), the CLI and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.app import create_app
from bot.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    CurrentStaff,
    Owner,
    Staff,
    StaffWithCsrf,
    require_csrf,
    require_role,
)
from tandem.config import PROJECT_ROOT, Settings
from tandem.db import Base, make_engine, migrate, session_scope, utcnow
from tandem.staff import cli, service
from tandem.staff.models import AuditLog, StaffSession, StaffUser
from tandem.staff.ratelimit import (
    Decision,
    InMemoryRateLimiter,
    LoginThrottle,
    RateLimiter,
    RedisRateLimiter,
    login_delay,
    make_rate_limiter,
)
from tests.conftest import missing_service

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"
# Fast, valid argon2id parameters: the defaults cost ~50 ms a hash and these tests hash a lot.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    monkeypatch.setattr(service, "password_hasher", CHEAP)
    return CHEAP


@pytest.fixture
def db(engine: Engine) -> Engine:
    # Until the lead regenerates the initial migration, the staff tables come from the models.
    Base.metadata.create_all(engine)
    return engine


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "redis_url": None}
    values.update(overrides)
    return Settings(**values)


def make_user(engine: Engine, email: str, role: str = "staff", **kwargs: Any) -> int:
    with session_scope(engine) as session:
        user = service.create_user(session, email=email, password=PASSWORD, role=role, **kwargs)
        return user.id


# ------------------------------------------------------------------------------ accounts


def test_create_user_normalises_and_hashes(db: Engine) -> None:
    with session_scope(db) as session:
        user = service.create_user(session, email="  Ann.Lee@Shop.Example ", password=PASSWORD)
        user_id = user.id
    with session_scope(db) as session:
        stored = service.get_user(session, user_id)
        assert stored.email == "ann.lee@shop.example"
        assert stored.display_name == "ann.lee"
        assert stored.role == "staff"
        assert stored.active is True
        assert stored.capacity == 3
        assert stored.created_at.tzinfo is not None
        assert stored.last_login_at is None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
        audit = session.scalars(select(AuditLog)).one()
        assert (audit.action, audit.target, audit.actor_user_id) == (
            "staff.created",
            "ann.lee@shop.example",
            None,
        )
        assert audit.detail == {"user_id": user_id, "role": "staff"}


def test_duplicate_email_in_any_case_is_refused(db: Engine) -> None:
    make_user(db, "sam@shop.example")
    with session_scope(db) as session, pytest.raises(service.UserExists):
        service.create_user(session, email="SAM@shop.example", password=PASSWORD)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "not-an-email"}, "e-mail"),
        ({"email": "a b@shop.example"}, "e-mail"),
        ({"email": "x" * 250 + "@a.io"}, "e-mail"),
        ({"password": "short"}, "at least 10"),
        ({"password": "x" * 1025}, "at most"),
        ({"role": "admin"}, "Unknown role"),
        ({"capacity": -1}, "Capacity"),
        ({"display_name": "n" * 101}, "display name"),
    ],
)
def test_create_user_checks_input(db: Engine, changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"email": "ok@shop.example", "password": PASSWORD} | changes
    with session_scope(db) as session:
        with pytest.raises(service.StaffError, match=message):
            service.create_user(session, **values)
        assert service.list_users(session) == []


def test_database_refuses_mixed_case_email_and_bad_role(db: Engine) -> None:
    row = {"display_name": "x", "password_hash": "h", "active": True, "capacity": 3}
    for bad in ({"email": "Ann@shop.example", "role": "staff"}, {"email": "a@b.io", "role": "god"}):
        with pytest.raises(IntegrityError), session_scope(db) as session:
            session.execute(insert(StaffUser).values(**row, **bad))


def test_list_users_owners_first_and_inactive_filter(db: Engine) -> None:
    make_user(db, "owner@shop.example", role="owner")
    make_user(db, "b@shop.example")
    gone = make_user(db, "a@shop.example")
    with session_scope(db) as session:
        service.deactivate_user(session, service.get_user(session, gone), actor=None)
    with session_scope(db) as session:
        assert [u.email for u in service.list_users(session)] == [
            "owner@shop.example",
            "a@shop.example",
            "b@shop.example",
        ]
        active = service.list_users(session, include_inactive=False)
        assert [u.email for u in active] == ["owner@shop.example", "b@shop.example"]


# ------------------------------------------------------------------------------ authenticate


def test_authenticate_accepts_the_right_password_any_email_case(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        user = service.authenticate(session, " ANN@shop.example", PASSWORD)
        assert user.id == user_id
    with session_scope(db) as session:
        assert service.get_user(session, user_id).last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ann@shop.example", "wrong password!"),
        ("nobody@shop.example", PASSWORD),
        ("ann@shop.example", ""),
        ("ann@shop.example", "x" * 2000),
    ],
)
def test_authenticate_fails_uniformly(db: Engine, email: str, password: str) -> None:
    make_user(db, "ann@shop.example")
    with session_scope(db) as session, pytest.raises(service.AuthError) as failure:
        service.authenticate(session, email, password)
    assert str(failure.value) == "Wrong e-mail or password."


def test_deactivated_user_cannot_authenticate(db: Engine) -> None:
    make_user(db, "owner@shop.example", role="owner")
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        service.deactivate_user(session, service.get_user(session, user_id), actor=None)
    with session_scope(db) as session, pytest.raises(service.AuthError):
        service.authenticate(session, "ann@shop.example", PASSWORD)


class CountingHasher(PasswordHasher):
    calls = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.calls += 1
        return super().verify(hash, password)


def test_unknown_email_still_costs_one_verification(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(service, "password_hasher", hasher)
    CountingHasher.calls = 0
    with session_scope(db) as session, pytest.raises(service.AuthError):
        service.authenticate(session, "ghost@shop.example", PASSWORD)
    assert CountingHasher.calls == 1


def test_hash_is_upgraded_when_parameters_change(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = make_user(db, "ann@shop.example")
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(service, "password_hasher", stronger)
    with session_scope(db) as session:
        old_hash = service.get_user(session, user_id).password_hash
        assert stronger.check_needs_rehash(old_hash)
        service.authenticate(session, "ann@shop.example", PASSWORD)
    with session_scope(db) as session:
        new_hash = service.get_user(session, user_id).password_hash
    assert new_hash != old_hash
    assert not stronger.check_needs_rehash(new_hash)
    assert stronger.verify(new_hash, PASSWORD)


def test_default_hasher_is_argon2id_with_strong_parameters() -> None:
    from argon2 import Type

    default = PasswordHasher()
    assert default.type is Type.ID
    assert default.memory_cost >= 19 * 1024  # OWASP's floor for argon2id


# ------------------------------------------------------------------------------ sessions


def test_session_token_is_stored_only_as_its_hash(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        new = service.start_session(session, service.get_user(session, user_id), user_agent="UA")
    with session_scope(db) as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.id == hashlib.sha256(new.token.encode()).hexdigest()
        assert new.token not in (row.id, row.csrf_token)
        assert row.csrf_token == new.csrf_token
        assert row.user_agent == "UA"
        resolved = service.resolve_session(session, new.token)
        assert resolved is not None and resolved.user.email == "ann@shop.example"
        assert service.resolve_session(session, row.id) is None  # the hash is no token
        assert service.resolve_session(session, "nonsense") is None
        assert service.resolve_session(session, None) is None


def test_session_expires_when_idle_and_is_deleted(db: Engine) -> None:
    settings = settings_for("sqlite://", staff_session_hours=12)
    user_id = make_user(db, "ann@shop.example")
    start = utcnow()
    with session_scope(db) as session:
        new = service.start_session(
            session, service.get_user(session, user_id), settings=settings, now=start
        )
        assert new.expires_at == start + timedelta(hours=12)
    with session_scope(db) as session:
        later = start + timedelta(hours=12, seconds=1)
        assert service.resolve_session(session, new.token, settings=settings, now=later) is None
    with session_scope(db) as session:
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0


def test_session_slides_but_not_past_the_absolute_limit(db: Engine) -> None:
    settings = settings_for("sqlite://", staff_session_hours=12, staff_session_max_days=7)
    user_id = make_user(db, "ann@shop.example")
    start = utcnow()
    with session_scope(db) as session:
        token = service.start_session(
            session, service.get_user(session, user_id), settings=settings, now=start
        ).token
    # Seen every 11 hours: the idle limit never bites, each use pushes expiry forward.
    now = start
    while now + timedelta(hours=11) < start + timedelta(days=7):
        now += timedelta(hours=11)
        with session_scope(db) as session:
            record = service.resolve_session(session, token, settings=settings, now=now)
            assert record is not None
            assert record.last_seen_at == now
            assert record.expires_at == min(now + timedelta(hours=12), start + timedelta(days=7))
    with session_scope(db) as session:
        at_limit = start + timedelta(days=7)
        assert service.resolve_session(session, token, settings=settings, now=at_limit) is None


def test_frequent_requests_do_not_rewrite_the_session(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    start = utcnow()
    with session_scope(db) as session:
        token = service.start_session(session, service.get_user(session, user_id), now=start).token
    with session_scope(db) as session:
        record = service.resolve_session(session, token, now=start + timedelta(seconds=30))
        assert record is not None and record.last_seen_at == start
        record = service.resolve_session(session, token, now=start + timedelta(seconds=90))
        assert record is not None and record.last_seen_at == start + timedelta(seconds=90)


def test_end_session_and_end_all_sessions(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    other_id = make_user(db, "bob@shop.example")
    with session_scope(db) as session:
        user, other = service.get_user(session, user_id), service.get_user(session, other_id)
        tokens = [service.start_session(session, user).token for _ in range(3)]
        bobs = service.start_session(session, other).token
    with session_scope(db) as session:
        assert service.end_session(session, tokens[0]) is True
        assert service.end_session(session, tokens[0]) is False
        assert service.end_all_sessions(session, service.get_user(session, user_id)) == 2
    with session_scope(db) as session:
        assert all(service.resolve_session(session, t) is None for t in tokens)
        assert service.resolve_session(session, bobs) is not None


def test_purge_expired_sessions(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    start = utcnow()
    with session_scope(db) as session:
        user = service.get_user(session, user_id)
        service.start_session(session, user, now=start - timedelta(days=2))
        live = service.start_session(session, user, now=start).token
    with session_scope(db) as session:
        assert service.purge_expired_sessions(session, now=start) == 1
    with session_scope(db) as session:
        assert service.resolve_session(session, live) is not None


def test_deactivation_ends_sessions_and_is_audited(db: Engine) -> None:
    owner_id = make_user(db, "owner@shop.example", role="owner")
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        token = service.start_session(session, service.get_user(session, user_id)).token
    with session_scope(db) as session:
        owner = service.get_user(session, owner_id)
        service.deactivate_user(session, service.get_user(session, user_id), actor=owner)
    with session_scope(db) as session:
        assert service.resolve_session(session, token) is None
        assert service.get_user(session, user_id).active is False
        entry = service.list_audit(session)[0]
        assert (entry.action, entry.actor_user_id, entry.target) == (
            "staff.deactivated",
            owner_id,
            "ann@shop.example",
        )
        assert entry.detail == {"user_id": user_id, "sessions_ended": 1}


def test_sessions_of_a_deactivated_user_do_not_resolve(db: Engine) -> None:
    make_user(db, "owner@shop.example", role="owner")
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        user = service.get_user(session, user_id)
        token = service.start_session(session, user).token
        user.active = False  # e.g. flipped by hand in the database
    with session_scope(db) as session:
        assert service.resolve_session(session, token) is None


def test_last_active_owner_cannot_be_deactivated(db: Engine) -> None:
    first = make_user(db, "first@shop.example", role="owner")
    with session_scope(db) as session, pytest.raises(service.StaffError, match="last active"):
        service.deactivate_user(session, service.get_user(session, first), actor=None)
    second = make_user(db, "second@shop.example", role="owner")
    with session_scope(db) as session:
        service.deactivate_user(
            session, service.get_user(session, first), actor=service.get_user(session, second)
        )
    with session_scope(db) as session:
        assert service.get_user(session, first).active is False


def test_reset_password_ends_sessions(db: Engine) -> None:
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        token = service.start_session(session, service.get_user(session, user_id)).token
    with session_scope(db) as session:
        with pytest.raises(service.StaffError):
            service.reset_password(session, service.get_user(session, user_id), "short", actor=None)
        service.reset_password(
            session, service.get_user(session, user_id), "a brand new secret", actor=None
        )
    with session_scope(db) as session:
        assert service.resolve_session(session, token) is None
        with pytest.raises(service.AuthError):
            service.authenticate(session, "ann@shop.example", PASSWORD)
        assert service.authenticate(session, "ann@shop.example", "a brand new secret").id == user_id
        assert service.list_audit(session)[0].action == "staff.password_reset"


def test_deleting_a_user_keeps_the_audit_trail(db: Engine) -> None:
    owner_id = make_user(db, "owner@shop.example", role="owner")
    user_id = make_user(db, "ann@shop.example")
    with session_scope(db) as session:
        owner = service.get_user(session, owner_id)
        service.start_session(session, owner)
        service.record_audit(session, owner, "settings.changed", "hours", {"open": "09:00"})
        session.delete(service.get_user(session, user_id))
    with session_scope(db) as session:
        session.delete(service.get_user(session, owner_id))
    with session_scope(db) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "settings.changed")).one()
        assert entry.actor_user_id is None
        assert entry.detail == {"open": "09:00"}
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0


# ------------------------------------------------------------------------------ rate limits


def require_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError) as error:
        missing_service(f"Redis is not reachable at {REDIS_URL}: {error}")
    finally:
        client.close()


def delete_redis_keys(pattern: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=pattern))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A factory of limiters on one backend; Redis keys get a per-test prefix, removed after."""
    made: list[RateLimiter] = []
    prefix = f"tandem:test:{uuid.uuid4().hex[:8]}:"
    if request.param == "redis":
        require_redis()

    def factory(limit: int, window: float) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "memory":
            limiter = InMemoryRateLimiter(limit, window)
        else:
            client = aioredis.Redis.from_url(REDIS_URL)
            limiter = RedisRateLimiter(client, limit, window, prefix=prefix)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.aclose()
    if request.param == "redis":
        delete_redis_keys(prefix + "*")


async def test_limiter_allows_limit_then_refuses_then_recovers(make_limiter: Any) -> None:
    limiter = make_limiter(3, 0.5)
    assert [(await limiter.hit("k")).allowed for _ in range(3)] == [True, True, True]
    refused = await limiter.hit("k")
    assert not refused.allowed
    assert 0 < refused.retry_after <= 0.5
    assert refused.retry_after_header == "1"
    # A refusal is not counted: waiting out the window is enough.
    await asyncio.sleep(0.55)
    assert (await limiter.hit("k")).allowed


async def test_limiter_keys_are_independent_and_reset(make_limiter: Any) -> None:
    limiter = make_limiter(1, 30)
    assert (await limiter.hit("a")).allowed
    assert not (await limiter.hit("a")).allowed
    assert (await limiter.hit("b")).allowed
    await limiter.reset("a")
    assert (await limiter.hit("a")).allowed


async def test_limiter_window_slides(make_limiter: Any) -> None:
    limiter = make_limiter(2, 0.6)
    assert (await limiter.hit("k")).allowed
    await asyncio.sleep(0.35)
    assert (await limiter.hit("k")).allowed
    await asyncio.sleep(0.35)  # the first hit has left the window, the second has not
    assert (await limiter.hit("k")).allowed
    refused = await limiter.hit("k")
    assert not refused.allowed
    assert refused.retry_after <= 0.35


async def test_limiter_counts_are_shared_between_instances(make_limiter: Any) -> None:
    first, second = make_limiter(2, 30), make_limiter(2, 30)
    await first.hit("k")
    await first.hit("k")
    shared = not (await second.hit("k")).allowed
    # Redis is the multi-worker backend; in-process limiters are per process by design.
    assert shared is isinstance(second, RedisRateLimiter)


async def test_login_throttle_slows_the_failing_client_and_never_locks_the_account(
    make_limiter: Any,
) -> None:
    throttle = LoginThrottle(make_limiter(1, LoginThrottle.WINDOW), free_failures=3)
    for _ in range(3):
        assert (await throttle.check("Ann@Shop.example", "10.0.0.66")).allowed
        await throttle.failed("Ann@Shop.example", "10.0.0.66")
    refused = await throttle.check("ann@shop.example", "10.0.0.66")
    assert not refused.allowed and 0 < refused.retry_after <= 1
    # The account's owner, elsewhere, is only paused a little, never refused.
    owner = await throttle.check("ann@shop.example", "10.0.0.5")
    assert owner.allowed and 0 < owner.retry_after <= LoginThrottle.ACCOUNT_PAUSE_CAP
    await throttle.succeeded("ann@shop.example", "10.0.0.5")
    assert await throttle.check("ann@shop.example", "10.0.0.5") == Decision(True, 0.0)
    # Spraying many accounts from one client is slowed too (from 4 × free failures).
    for n in range(12):
        await throttle.failed(f"user{n}@shop.example", "10.0.0.77")
    assert not (await throttle.check("fresh@shop.example", "10.0.0.77")).allowed
    assert (await throttle.check("fresh@shop.example", "10.0.0.78")).allowed


async def test_login_delays_grow_after_each_failure() -> None:
    now = [1000.0]
    limiter = InMemoryRateLimiter(1, LoginThrottle.WINDOW, clock=lambda: now[0])
    throttle = LoginThrottle(limiter, free_failures=2)
    waits = []
    for _ in range(6):
        decision = await throttle.check("ann@shop.example", "10.0.0.66")
        waits.append(0.0 if decision.allowed else decision.retry_after)
        now[0] += waits[-1]  # the client waits exactly as long as told, then fails again
        await throttle.failed("ann@shop.example", "10.0.0.66")
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert login_delay(40, 2, LoginThrottle.CLIENT_DELAY_CAP) == LoginThrottle.CLIENT_DELAY_CAP


async def test_redis_limiter_falls_back_in_process_when_redis_is_down() -> None:
    dead = aioredis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    limiter = RedisRateLimiter(dead, 1, 30)
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k")).allowed
    await limiter.aclose()


async def test_backend_is_chosen_by_redis_url() -> None:
    memory = make_rate_limiter(settings_for("sqlite://"), limit=5, window=60)
    assert isinstance(memory, InMemoryRateLimiter)
    redis = make_rate_limiter(settings_for("sqlite://", redis_url=REDIS_URL), limit=5, window=60)
    assert isinstance(redis, RedisRateLimiter)
    await redis.aclose()


def test_in_memory_limiter_with_a_fake_clock() -> None:
    now = [100.0]
    limiter = InMemoryRateLimiter(3, 1.0, clock=lambda: now[0])
    for at in (100.0, 100.3, 100.6):
        now[0] = at
        assert limiter.hit_sync("k") == Decision(True)
    now[0] = 100.9
    assert limiter.hit_sync("k") == Decision(False, pytest.approx(0.1))
    now[0] = 101.05
    assert limiter.hit_sync("k").allowed
    now[0] = 101.1
    assert limiter.hit_sync("k") == Decision(False, pytest.approx(0.2))


# ------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli_db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)  # until the migration includes the staff tables
    engine.dispose()
    yield url


def run_cli(url: str, *argv: str) -> int:
    return cli.main(["--database-url", url, *argv])


def test_cli_create_owner_from_env(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.OWNER_PASSWORD_ENV, PASSWORD)
    assert run_cli(cli_db, "create-owner", "--email", "Boss@Shop.example", "--name", "Bo") == 0
    assert "Created owner boss@shop.example" in capsys.readouterr().out
    with session_scope(make_engine(cli_db)) as session:
        user = service.authenticate(session, "boss@shop.example", PASSWORD)
        assert (user.role, user.display_name) == ("owner", "Bo")


def test_cli_create_staff_with_typed_password(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cli.STAFF_PASSWORD_ENV, raising=False)
    typed = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(typed))
    assert run_cli(cli_db, "create-staff", "--email", "ann@shop.example", "--capacity", "5") == 0
    assert run_cli(cli_db, "list") == 0
    out = capsys.readouterr().out
    assert "ann@shop.example" in out and "staff" in out and "never" in out


@pytest.mark.parametrize(
    ("argv", "typed", "message"),
    [
        (["create-owner", "--email", "nope"], [PASSWORD, PASSWORD], "does not look like"),
        (["create-owner", "--email", "a@shop.example"], ["short", "short"], "at least 10"),
        (["create-owner", "--email", "a@shop.example"], [PASSWORD, PASSWORD + "x"], "match"),
        (["create-staff", "--email", "a@shop.example", "--capacity", "-2"], [PASSWORD] * 2, "Cap"),
    ],
)
def test_cli_bad_input_exits_2(
    cli_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    typed: list[str],
    message: str,
) -> None:
    monkeypatch.delenv(cli.OWNER_PASSWORD_ENV, raising=False)
    monkeypatch.delenv(cli.STAFF_PASSWORD_ENV, raising=False)
    answers = iter(typed)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    assert run_cli(cli_db, *argv) == 2
    assert message in capsys.readouterr().err


def test_cli_existing_email_exits_1_without_asking(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.OWNER_PASSWORD_ENV, PASSWORD)
    assert run_cli(cli_db, "create-owner", "--email", "boss@shop.example") == 0
    monkeypatch.delenv(cli.OWNER_PASSWORD_ENV)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": pytest.fail("asked"))
    assert run_cli(cli_db, "create-owner", "--email", "BOSS@shop.example") == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_deactivate_and_reset_password(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.OWNER_PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(cli.STAFF_PASSWORD_ENV, PASSWORD)
    assert run_cli(cli_db, "create-owner", "--email", "boss@shop.example") == 0
    assert run_cli(cli_db, "create-staff", "--email", "ann@shop.example") == 0
    assert run_cli(cli_db, "deactivate", "--email", "boss@shop.example") == 1
    assert "last active owner" in capsys.readouterr().err
    assert run_cli(cli_db, "deactivate", "--email", "ghost@shop.example") == 1
    assert "No account" in capsys.readouterr().err

    engine = make_engine(cli_db)
    with session_scope(engine) as session:
        user = service.require_user_by_email(session, "ann@shop.example")
        token = service.start_session(session, user).token
    monkeypatch.setenv(cli.STAFF_PASSWORD_ENV, "another long secret")
    assert run_cli(cli_db, "reset-password", "--email", "ann@shop.example") == 0
    with session_scope(engine) as session:
        assert service.resolve_session(session, token) is None
        assert service.authenticate(session, "ann@shop.example", "another long secret")
    assert run_cli(cli_db, "deactivate", "--email", "ann@shop.example") == 0
    assert run_cli(cli_db, "deactivate", "--email", "ann@shop.example") == 0
    assert "already deactivated" in capsys.readouterr().out
    assert run_cli(cli_db, "list", "--active-only") == 0
    assert "ann@" not in capsys.readouterr().out
    with session_scope(engine) as session:
        actions = [entry.action for entry in service.list_audit(session)]
        assert actions[:2] == ["staff.deactivated", "staff.password_reset"]
    engine.dispose()


def test_cli_runs_as_a_module(cli_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": cli_db, cli.OWNER_PASSWORD_ENV: PASSWORD}
    created = subprocess.run(
        [sys.executable, "-m", "tandem.staff", "create-owner", "--email", "o@shop.example"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "tandem.staff", "list"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "o@shop.example" in listed.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "tandem.staff", "create-owner"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "--email" in usage.stderr


# ------------------------------------------------------------------------------ HTTP


def build_app(tmp_path: Path, **overrides: Any) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)  # until the migration includes the staff tables
    app = create_app(settings_for(url, rasa_url="http://127.0.0.1:9", **overrides), engine)
    make_user(engine, "boss@shop.example", role="owner", display_name="Boss")
    make_user(engine, "ann@shop.example", capacity=2)

    # Test-only routes exercising the dependencies as feature routers will use them.
    @app.get("/test/owner-only")
    def owner_only(owner: Owner) -> dict[str, str]:
        return {"owner": owner.email}

    @app.post("/test/write")
    def write(staff: StaffWithCsrf) -> dict[str, str]:
        return {"by": staff.actor}

    guarded = APIRouter(
        prefix="/test/guarded",
        dependencies=[Depends(require_csrf), Depends(require_role("staff"))],
    )

    @guarded.get("")
    def read(staff: Staff) -> dict[str, int]:
        return {"id": staff.id}

    @guarded.delete("")
    def remove(staff: Staff) -> dict[str, bool]:
        return {"removed": True}

    app.include_router(guarded)
    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(tmp_path)) as test_client:
        yield test_client


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    response = client.post("/api/staff/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_login_sets_a_safe_cookie_and_me_answers(client: TestClient) -> None:
    response = client.post(
        "/api/staff/login", json={"email": "Ann@Shop.example", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {
        "id": body["user"]["id"],
        "email": "ann@shop.example",
        "display_name": "ann",
        "role": "staff",
        "capacity": 2,
    }
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # plain http in this test
    assert f"max-age={7 * 86400}" in lowered

    me = client.get("/api/staff/me")
    assert me.status_code == 200
    assert me.json() == body


def test_cookie_is_secure_over_https(tmp_path: Path) -> None:
    with TestClient(build_app(tmp_path), base_url="https://testserver") as https:
        response = https.post(
            "/api/staff/login", json={"email": "ann@shop.example", "password": PASSWORD}
        )
        assert response.status_code == 200
        assert "secure" in response.headers["set-cookie"].lower()
        assert https.get("/api/staff/me").status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "ann@shop.example", "password": "not the password"},
        {"email": "ghost@shop.example", "password": PASSWORD},
    ],
)
def test_bad_credentials_are_401_with_one_message(
    client: TestClient, credentials: dict[str, str]
) -> None:
    response = client.post("/api/staff/login", json=credentials)
    assert response.status_code == 401
    assert response.json() == {"detail": "Wrong e-mail or password."}
    assert "set-cookie" not in response.headers


def test_malformed_login_is_422(client: TestClient) -> None:
    assert client.post("/api/staff/login", json={"email": "a@b.io"}).status_code == 422


def test_too_many_logins_are_429_with_retry_after(client: TestClient) -> None:
    # A stopped clock: the first delay (1 s after the 5th failure) must not run out while a
    # busy machine hashes five passwords.
    app = client.app
    app.state.login_throttle = LoginThrottle(  # type: ignore[attr-defined]
        InMemoryRateLimiter(1, LoginThrottle.WINDOW, clock=lambda: 1000.0),
        free_failures=app.state.settings.login_rate_limit_per_minute,  # type: ignore[attr-defined]
    )
    for _ in range(5):
        bad = {"email": "ann@shop.example", "password": "guess guess"}
        assert client.post("/api/staff/login", json=bad).status_code == 401
    response = client.post(
        "/api/staff/login", json={"email": "ann@shop.example", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "Too many login attempts" in response.json()["detail"]


def test_me_requires_a_live_session(client: TestClient) -> None:
    response = client.get("/api/staff/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Log in first."}
    client.cookies.set(SESSION_COOKIE, "forged-token")
    assert client.get("/api/staff/me").status_code == 401


def test_owner_only_route(client: TestClient) -> None:
    assert client.get("/test/owner-only").status_code == 401
    log_in(client, "ann@shop.example")
    denied = client.get("/test/owner-only")
    assert denied.status_code == 403
    assert denied.json() == {"detail": "Only the owner can do this."}
    log_in(client, "boss@shop.example")
    assert client.get("/test/owner-only").json() == {"owner": "boss@shop.example"}


def test_csrf_is_required_for_state_changing_requests(client: TestClient) -> None:
    assert client.post("/test/write").status_code == 401
    csrf = log_in(client, "ann@shop.example")
    assert client.post("/test/write").status_code == 403
    assert client.post("/test/write", headers={CSRF_HEADER: "x" * 43}).status_code == 403
    ok = client.post("/test/write", headers={CSRF_HEADER: csrf})
    assert ok.status_code == 200 and ok.json()["by"].startswith("staff:")
    # A router-wide guard lets reads through and checks writes.
    assert client.get("/test/guarded").status_code == 200
    assert client.delete("/test/guarded").status_code == 403
    assert client.delete("/test/guarded", headers={CSRF_HEADER: csrf}).status_code == 200


def test_logout_needs_csrf_ends_the_session_and_clears_the_cookie(client: TestClient) -> None:
    csrf = log_in(client, "ann@shop.example")
    token = client.cookies[SESSION_COOKIE]
    assert client.post("/api/staff/logout").status_code == 403
    response = client.post("/api/staff/logout", headers={CSRF_HEADER: csrf})
    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert client.get("/api/staff/me").status_code == 401
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert service.resolve_session(session, token) is None
    assert client.post("/api/staff/logout").status_code == 204  # twice is fine


def test_logging_in_again_replaces_the_old_session(client: TestClient) -> None:
    log_in(client, "ann@shop.example")
    old = client.cookies[SESSION_COOKIE]
    log_in(client, "ann@shop.example")
    assert client.cookies[SESSION_COOKIE] != old
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert service.resolve_session(session, old) is None
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 1


def test_deactivated_staff_is_logged_out_at_once(client: TestClient) -> None:
    log_in(client, "ann@shop.example")
    assert client.get("/api/staff/me").status_code == 200
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        user = service.require_user_by_email(session, "ann@shop.example")
        service.deactivate_user(session, user, actor=None)
    assert client.get("/api/staff/me").status_code == 401
    response = client.post(
        "/api/staff/login", json={"email": "ann@shop.example", "password": PASSWORD}
    )
    assert response.status_code == 401


def test_current_staff_is_a_detached_snapshot(client: TestClient) -> None:
    log_in(client, "boss@shop.example")
    me = client.get("/api/staff/me").json()["user"]
    snapshot = CurrentStaff(**me, session_id="s", csrf_token="c")
    assert snapshot.is_owner and snapshot.actor == f"staff:{me['id']}"


def test_redis_backed_login_throttle(tmp_path: Path) -> None:
    require_redis()
    app = build_app(tmp_path, redis_url=REDIS_URL, login_rate_limit_per_minute=2)
    email = f"{uuid.uuid4().hex[:8]}@nobody.example"
    # A unique client address, so reruns and parallel runs do not share the per-IP count.
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    with TestClient(app, client=(address, 50000)) as client:
        attempt = {"email": email, "password": "x" * 10}
        codes = [client.post("/api/staff/login", json=attempt).status_code for _ in range(2)]
        assert codes == [401, 401]  # the free failures
        throttle: LoginThrottle = app.state.login_throttle
        assert isinstance(throttle.limiter, RedisRateLimiter)
        # Three more failures counted in Redis: the next attempt must wait 2**3 = 8 s, a
        # margin no slow machine eats (after two, the wait is 1 s, and a busy CI machine
        # once took longer than that between two attempts).
        for _ in range(3):
            client.portal.call(throttle.failed, email, address)  # type: ignore[attr-defined]
        refused = client.post("/api/staff/login", json=attempt)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 8
        for key in throttle._keys(email, address).values():
            client.portal.call(throttle.limiter.reset, key)  # type: ignore[attr-defined]
        client.portal.call(throttle.aclose)  # type: ignore[attr-defined]


def test_rotating_forwarded_for_cannot_lock_staff_out(tmp_path: Path) -> None:
    """Issue 12 finding 9: five wrong passwords from rotating X-Forwarded-For addresses
    made the right password get 429 (and the header was believed from anyone)."""
    app = build_app(tmp_path)
    wrong = {"email": "ann@shop.example", "password": "guess guess"}
    with TestClient(app, client=("10.0.0.66", 40000)) as attacker:
        codes = [
            attacker.post(
                "/api/staff/login", json=wrong, headers={"X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in range(8)
        ]
        # The header is not believed: every attempt counts against the attacker's address.
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        owner = TestClient(app, client=("10.0.0.5", 40001))
        started = time.monotonic()
        right = {"email": "ann@shop.example", "password": PASSWORD}
        assert owner.post("/api/staff/login", json=right).status_code == 200
        assert time.monotonic() - started < LoginThrottle.ACCOUNT_PAUSE_CAP + 2


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    app = build_app(tmp_path, trusted_proxies="10.9.0.0/16, 192.0.2.1")
    wrong = {"email": "ann@shop.example", "password": "guess guess"}
    with TestClient(app, client=("10.9.3.4", 40000)) as proxy:
        # Behind the proxy, each real client has its own count.
        for n in range(5):
            headers = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert proxy.post("/api/staff/login", json=wrong, headers=headers).status_code == 401
        forged = {"X-Forwarded-For": "198.51.100.1, 198.51.100.200"}  # right-most hop counts
        boss = {**wrong, "email": "boss@shop.example"}
        for _ in range(5):
            assert proxy.post("/api/staff/login", json=boss, headers=forged).status_code == 401
        assert proxy.post("/api/staff/login", json=boss, headers=forged).status_code == 429
        fresh = {"X-Forwarded-For": "198.51.100.9"}
        assert proxy.post("/api/staff/login", json=wrong, headers=fresh).status_code == 401


def test_client_address() -> None:
    from starlette.requests import Request as StarletteRequest

    from bot.clients import client_address

    def request(peer: str, *forwarded: str) -> StarletteRequest:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return StarletteRequest(
            {"type": "http", "client": (peer, 1), "headers": headers, "method": "GET"}
        )

    untrusted = settings_for("sqlite://")
    assert client_address(request("198.51.100.7", "1.2.3.4"), untrusted) == "198.51.100.7"
    trusted = settings_for("sqlite://", trusted_proxies="10.0.0.0/8,::1")
    assert client_address(request("10.1.1.1", "1.2.3.4"), trusted) == "1.2.3.4"
    assert client_address(request("::1", "9.9.9.9, 1.2.3.4, 10.0.0.2"), trusted) == "1.2.3.4"
    assert client_address(request("10.1.1.1", "9.9.9.9", "1.2.3.4"), trusted) == "1.2.3.4"
    assert client_address(request("10.1.1.1", "1.2.3.4, not-an-ip"), trusted) == "10.1.1.1"
    assert client_address(request("10.1.1.1"), trusted) == "10.1.1.1"
    assert client_address(request("198.51.100.7", "1.2.3.4"), trusted) == "198.51.100.7"
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        settings_for("sqlite://", trusted_proxies="10.0.0.0/8, proxy.example")


def test_make_run_starts_uvicorn_without_proxy_headers_unless_proxies_are_trusted() -> None:
    """Finding 9: uvicorn believes X-Forwarded-For from 127.0.0.1 by default."""
    from tandem.run import gateway_command

    command = gateway_command(settings_for("sqlite://"))
    assert "--no-proxy-headers" in command and "--forwarded-allow-ips" not in command
    command = gateway_command(settings_for("sqlite://", trusted_proxies="10.0.0.0/8"))
    assert command[command.index("--forwarded-allow-ips") + 1] == "10.0.0.0/8"
