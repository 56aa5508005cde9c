"""Fixtures for the business and action tests: a seeded SQLite database on a fixed date.

Imported explicitly by tests/test_business.py and tests/test_actions.py (the root
conftest.py belongs to the gateway tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import tandem.models  # noqa: F401  (every table on Base.metadata)
from tandem.business.profile import BusinessProfile, load_profile
from tandem.business.seed import seed_demo
from tandem.business.service import BusinessService
from tandem.config import PROJECT_ROOT, get_settings
from tandem.db import Base, get_engine, make_engine, session_scope

BUSINESS_FILE = PROJECT_ROOT / "business.yml"
DEMO_DATA = PROJECT_ROOT / "data" / "demo"
# Wednesday 18 November 2026, 9:00 AM in Chicago: before opening, a week before Thanksgiving
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture
def profile() -> BusinessProfile:
    return load_profile(BUSINESS_FILE)


@pytest.fixture
def business_engine(tmp_path: Path, profile: BusinessProfile) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'business.db'}")
    Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        seed_demo(session, DEMO_DATA, profile=profile, now=NOW)
    yield engine
    engine.dispose()


@pytest.fixture
def session(business_engine: Engine) -> Iterator[Session]:
    with session_scope(business_engine) as session:
        yield session


@pytest.fixture
def service(session: Session, profile: BusinessProfile) -> BusinessService:
    return BusinessService(session, profile, clock=lambda: NOW)


@pytest.fixture
def actions_env(
    business_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Engine]:
    """Point the actions at the seeded database and freeze their clock at NOW."""
    import actions.common

    monkeypatch.setenv("DATABASE_URL", str(business_engine.url))
    monkeypatch.setenv("BUSINESS_FILE", str(BUSINESS_FILE))
    get_settings.cache_clear()
    get_engine.cache_clear()
    monkeypatch.setattr(actions.common, "clock", lambda: NOW)
    yield business_engine
    get_engine.cache_clear()
    get_settings.cache_clear()
