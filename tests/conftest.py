"""Shared fixtures: databases (SQLite and PostgreSQL) and one live stack per session.

PostgreSQL and the live Rasa stack are real. Where a service is missing, its tests
are skipped on a developer's machine and fail in CI (TANDEM_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from tandem.abuse.service import LIFTED_LIMITS
from tandem.config import Settings
from tandem.db import make_engine, migrate, session_scope

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("TANDEM_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TANDEM_REQUIRE_SERVICES=1: services are required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tandem_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error.orig}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tandem.db'}"
        migrate(url)
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    yield engine
    if request.param == "postgresql":
        from tandem.models import Base

        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    engine.dispose()


@dataclass(frozen=True)
class LiveStack:
    settings: Settings
    gateway_url: str
    database_url: str
    state_dir: Path


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The real action server, Rasa server and gateway, started once for the session."""
    from tandem.run import Stack, StartupError

    state_dir = tmp_path_factory.mktemp("stack")
    # Staff answer at any hour here, and a presence set once lasts the session, so that
    # handoffs queue for a person (see live_staff_online) whatever the time of the run.
    stack = Stack.isolated(
        state_dir,
        rasa_timeout_seconds=30,
        # Once per session; a machine busy with other work can take minutes to load Rasa.
        rasa_start_timeout_seconds=900,
        staff_hours="always",
        staff_presence_ttl_seconds=86400,
        # Every browser test logs in from 127.0.0.1; the limit itself is tested in test_staff.
        login_rate_limit_per_minute=1000,
        # Every test is one client (127.0.0.1); the abuse limits are tested in
        # test_customer_security.py.
        **LIFTED_LIMITS,
    )
    settings = stack.settings
    database_url = settings.database_url
    try:
        model = stack.preflight()
        stack.start(model)
    except StartupError as error:
        missing_service(f"the live stack did not start: {error}")
    yield LiveStack(
        settings=settings,
        gateway_url=f"http://127.0.0.1:{settings.gateway_port}",
        database_url=database_url,
        state_dir=state_dir,
    )
    stack.stop()


@pytest.fixture(scope="session")
def live_staff_online(live_stack: LiveStack) -> int:
    """A staff member online on the live gateway, so that handoffs queue; returns their id."""
    import httpx

    from tandem.staff import service as staff_service

    engine = make_engine(live_stack.database_url)
    try:
        with session_scope(engine) as session:
            user = staff_service.create_user(
                session,
                email="on-duty@live.example",
                password="on duty password",
                display_name="On Duty",
                capacity=100,
            )
            new = staff_service.start_session(session, user)
            user_id, token, csrf = user.id, new.token, new.csrf_token
    finally:
        engine.dispose()
    response = httpx.put(
        f"{live_stack.gateway_url}/api/staff/presence",
        json={"state": "online"},
        headers={"Cookie": f"tandem_session={token}", "X-CSRF-Token": csrf},
        timeout=30,
    )
    response.raise_for_status()
    return user_id


@pytest.fixture(autouse=True)
def _staff_online_for_rasa_tests(request: pytest.FixtureRequest) -> None:
    # Only tests marked `rasa` start the live stack; they get someone on duty.
    if request.node.get_closest_marker("rasa") is not None:
        request.getfixturevalue("live_staff_online")


# ------------------------------------------------------------------ the fast lane
# `make test-fast` deselects what needs a service, a trained model or a browser. Each test
# gets those marks from the fixtures and parameters it uses, so none can be forgotten.
_FIXTURE_MARKS = {
    "postgres_url": "postgres",
    "live_stack": "rasa",
    "live_staff_online": "rasa",
    "redis_client": "redis",
    "redis_prefix": "redis",
    "model_path": "model",
    "exported_encoder": "model",
}
_PARAM_MARKS = {"postgresql": "postgres", "redis": "redis"}
FAST_LANE = "not rasa and not postgres and not redis and not browser and not model and not fuzz"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marks = {mark for name, mark in _FIXTURE_MARKS.items() if name in item.fixturenames}  # type: ignore[attr-defined]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            marks |= {
                _PARAM_MARKS[value]
                for value in callspec.params.values()
                if isinstance(value, str) and value in _PARAM_MARKS
            }
        if "browser" in item.path.parts:
            marks.add("browser")
        for mark in sorted(marks):
            item.add_marker(mark)
