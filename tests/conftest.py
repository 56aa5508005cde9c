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

from tandem.config import Settings
from tandem.db import make_engine, migrate

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
    stack = Stack.isolated(state_dir, rasa_timeout_seconds=30)
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
