"""Browser fixtures: Debian's Chromium driven by Playwright, against the live stack.

The live stack (real actions, Rasa and gateway; tests/conftest.py) is shared by the whole
session, so browser tests assert on their own conversations and on changes, never on
absolute totals. Screenshots go to var/test-artifacts/screenshots; with
TANDEM_UPDATE_SCREENSHOTS=1 the README's screenshots in docs/screenshots are rewritten too.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tandem.db import make_engine, session_scope

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "screenshots"
README_SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per module; each test opens its own contexts (cookies, storage).

    Not per session: Playwright's sync API keeps an event loop running in the main thread
    while it is started, which would break every later test that calls asyncio.run().
    """
    if not os.path.exists(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM} (scripts/chromium.sh installs it)"
        if os.environ.get("TANDEM_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def save_screenshot(page: object, name: str, *, readme: bool = False) -> Path:
    """Save a PNG as a test artifact (and for the README when asked to update them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    if readme and os.environ.get("TANDEM_UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SHOTS / path.name)
    return path


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    password: str
    display_name: str
    role: str


def make_account(database_url: str, role: str, display_name: str) -> Account:
    """A fresh staff or owner account on the live stack's database."""
    from tandem.staff import service as staff_service

    email = f"{role}-{uuid.uuid4().hex[:8]}@browser.example"
    password = f"browser test password {uuid.uuid4().hex[:6]}"
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            user = staff_service.create_user(
                session,
                email=email,
                password=password,
                display_name=display_name,
                role=role,
                capacity=5,
            )
            session.flush()
            user_id = user.id
    finally:
        engine.dispose()
    return Account(user_id, email, password, display_name, role)


@pytest.fixture(scope="session")
def owner_account(live_stack: object) -> Account:
    return make_account(live_stack.database_url, "owner", "Olivia Owner")  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def staff_account(live_stack: object) -> Account:
    return make_account(live_stack.database_url, "staff", "Sam Staff")  # type: ignore[attr-defined]


def login_context(browser: object, base_url: str, account: Account, **options: object) -> object:
    """A browser context logged in as `account` through the real login API."""
    context = browser.new_context(base_url=base_url, **options)  # type: ignore[attr-defined]
    response = context.request.post(
        "/api/staff/login", data={"email": account.email, "password": account.password}
    )
    assert response.ok, response.text()
    return context
