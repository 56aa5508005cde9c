"""The owner dashboard (/owner) in Chromium against the live stack.

Data is made the way customers and staff make it: through the gateway's customer API and
the staff API. The stack is shared by the whole session, so the tests look for their own
conversations and for changes in the figures, never for absolute totals.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from bot.auth import SESSION_COOKIE
from tandem.db import make_engine, session_scope
from tandem.staff import service as staff_service
from tests.browser.conftest import DESKTOP, PHONE, Account, save_screenshot
from tests.chat_client import WidgetTokens

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

XSS = "<img src=x onerror=alert(1)>"
WAIT = 30_000


@dataclass(frozen=True)
class Story:
    """An escalated, closed and rated conversation, and a bot-only one, both with a token."""

    token: str
    escalated_id: str
    bot_id: str


def _customer_says(client: httpx.Client, texts: list[str]) -> str:
    created = client.post("/api/conversations")
    assert created.status_code == 201, created.text
    chat_id: str = created.json()["id"]
    for text in texts:
        sent = client.post(f"/api/conversations/{chat_id}/messages", json={"text": text})
        assert sent.status_code == 200, sent.text
    return chat_id


def _state(client: httpx.Client, chat_id: str) -> str:
    return str(client.get(f"/api/conversations/{chat_id}").json()["state"])


def _session(database_url: str, account: Account) -> tuple[str, str]:
    """A session cookie and CSRF token made in the database, like a login would.

    The real login API is exercised once (test_login_and_reports_move_with_new_data); the
    other tests skip it because the gateway allows only a few logins a minute per IP, and
    the whole browser suite logs in from 127.0.0.1.
    """
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as db:
            user = staff_service.get_user(db, account.id)
            new = staff_service.start_session(db, user)
            return new.token, new.csrf_token
    finally:
        engine.dispose()


def _owner_api(live_stack: Any, owner: Account) -> tuple[httpx.Client, dict[str, str]]:
    token, csrf = _session(live_stack.database_url, owner)
    client = httpx.Client(
        base_url=live_stack.gateway_url, timeout=60, cookies={SESSION_COOKIE: token}
    )
    return client, {"X-CSRF-Token": csrf}


@pytest.fixture(scope="module")
def story(live_stack: Any, owner_account: Account) -> Iterator[Story]:
    gateway = live_stack.gateway_url
    token = f"quokka{uuid.uuid4().hex[:8]}"
    customer = httpx.Client(base_url=gateway, timeout=60, auth=WidgetTokens())
    escalated = _customer_says(
        customer,
        [
            f"Hello, I have a question about parcel {token}",
            XSS,
            "can I talk to a person?",
        ],
    )
    assert _state(customer, escalated) in {"queued", "with_staff"}
    staff, csrf = _owner_api(live_stack, owner_account)
    if _state(customer, escalated) == "queued":
        claim = staff.post(f"/api/staff/conversations/{escalated}/claim", headers=csrf)
        assert claim.status_code == 200, claim.text
    reply = staff.post(
        f"/api/staff/conversations/{escalated}/reply",
        json={"text": "So sorry, I am sending a new one today."},
        headers=csrf,
    )
    assert reply.status_code == 200, reply.text
    closed = staff.post(
        f"/api/staff/conversations/{escalated}/close",
        json={"resolution": "Resent the parcel"},
        headers=csrf,
    )
    assert closed.status_code == 200, closed.text
    rated = customer.post(f"/api/conversations/{escalated}/csat", json={"score": 4})
    assert rated.status_code == 200, rated.text
    bot_only = _customer_says(customer, [f"what are your opening hours? ref {token}"])
    assert _state(customer, bot_only) == "bot"
    yield Story(token, escalated, bot_only)
    customer.close()
    staff.close()


def _open(browser: Any, live_stack: Any, account: Account, section: str, **options: Any) -> Page:
    """A page of /owner#section, logged in as `account`."""
    token, _ = _session(live_stack.database_url, account)
    context = browser.new_context(base_url=live_stack.gateway_url, **options)
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live_stack.gateway_url}])
    page: Page = context.new_page()
    page.goto(f"/owner#{section}")
    return page


def _kpi(page: Page, name: str) -> float:
    raw = page.get_by_test_id(f"kpi-{name}").get_attribute("data-value")
    return float(raw) if raw else 0.0


def test_login_and_reports_move_with_new_data(
    browser: Any, live_stack: Any, owner_account: Account
) -> None:
    context = browser.new_context(base_url=live_stack.gateway_url, viewport=DESKTOP)
    page: Page = context.new_page()
    page.goto("/owner")
    page.get_by_test_id("login-email").fill(owner_account.email)
    page.get_by_test_id("login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    page.get_by_test_id("login-password").fill(owner_account.password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("nav-reports")).to_be_visible(timeout=WAIT)
    kpis = page.get_by_test_id("kpi-conversations")
    expect(kpis).to_have_attribute("data-value", re.compile(r"^\d+$"), timeout=WAIT)
    before = {name: _kpi(page, name) for name in ("conversations", "csat")}

    # New data: a bot conversation, and one handed off, closed and rated 5.
    gateway = live_stack.gateway_url
    with httpx.Client(base_url=gateway, timeout=60, auth=WidgetTokens()) as customer:
        _customer_says(customer, ["what are your opening hours?"])
        handed = _customer_says(customer, ["I want to speak to a person please"])
        staff, csrf = _owner_api(live_stack, owner_account)
        try:
            if _state(customer, handed) == "queued":
                assert staff.post(
                    f"/api/staff/conversations/{handed}/claim", headers=csrf
                ).is_success
            staff.post(
                f"/api/staff/conversations/{handed}/reply", json={"text": "Hi!"}, headers=csrf
            ).raise_for_status()
            staff.post(
                f"/api/staff/conversations/{handed}/close",
                json={"resolution": "Answered"},
                headers=csrf,
            ).raise_for_status()
        finally:
            staff.close()
        customer.post(f"/api/conversations/{handed}/csat", json={"score": 5}).raise_for_status()

    page.get_by_test_id("report-apply").click()
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=kpi-conversations]').dataset.value)"
        " >= n + 2",
        arg=before["conversations"],
        timeout=WAIT,
    )
    assert _kpi(page, "csat") > 0
    shares = sum(_kpi(page, name) for name in ("bot-share", "handed-off-share", "ticket-share"))
    assert shares == pytest.approx(1.0, abs=0.01)
    assert _kpi(page, "handed-off-share") > 0
    for name in ("wait-p50", "wait-p90", "fallback-rate"):
        expect(page.get_by_test_id(f"kpi-{name}")).not_to_have_text("")
    for chart in ("sentiment", "outcomes", "reasons", "wait", "csat", "intents", "hours"):
        container = page.get_by_test_id(f"chart-{chart}")
        svg = container.locator("svg[role=img]")
        expect(svg).to_have_count(1)
        assert svg.get_attribute("aria-label")
        expect(container.locator("figcaption")).not_to_be_empty()
        assert container.locator("table tbody tr").count() > 0
    # The 24 hour columns are all in the data table.
    expect(page.get_by_test_id("chart-hours").locator("table tbody tr")).to_have_count(24)
    expect(page.get_by_test_id("chart-reasons")).to_contain_text(re.compile("person", re.I))
    save_screenshot(page, "owner-desktop", readme=True)
    context.close()


def test_log_lists_filters_searches_and_details(
    browser: Any, live_stack: Any, owner_account: Account, story: Story
) -> None:
    page = _open(browser, live_stack, owner_account, "log", viewport=DESKTOP)
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    row = page.locator(f'[data-testid=log-row][data-conversation-id="{story.escalated_id}"]')
    expect(row).to_be_visible(timeout=WAIT)

    # Text search finds both of the story's conversations and nothing else.
    page.get_by_test_id("filter-search").fill(story.token)
    page.get_by_test_id("filter-apply").click()
    rows = page.get_by_test_id("log-row")
    expect(rows).to_have_count(2, timeout=WAIT)
    # Filters narrow it: the outcome, then the reason.
    escalated_row = page.locator(f'[data-conversation-id="{story.escalated_id}"]')
    page.get_by_test_id("filter-outcome").select_option("bot")
    page.get_by_test_id("filter-apply").click()
    expect(escalated_row).to_have_count(0, timeout=WAIT)
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-conversation-id", story.bot_id)
    page.get_by_test_id("filter-outcome").select_option("handed_off")
    page.get_by_test_id("filter-reason").select_option("human_request")
    page.get_by_test_id("filter-apply").click()
    expect(escalated_row).to_have_count(1, timeout=WAIT)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("4★")

    # Export honours the filters: the CSV holds the escalated conversation only.
    with page.expect_download(timeout=WAIT) as download:
        page.get_by_test_id("export-conversations").click()
    csv_text = download.value.path().read_text(encoding="utf-8")
    assert story.escalated_id in csv_text and story.bot_id not in csv_text
    with page.expect_download(timeout=WAIT) as download:
        page.get_by_test_id("export-messages").click()
    assert story.escalated_id in download.value.path().read_text(encoding="utf-8")

    # The detail: every message with its score; the XSS text is text.
    rows.first.click()
    detail = page.get_by_test_id("log-detail")
    expect(detail).to_be_visible(timeout=WAIT)
    messages = detail.get_by_test_id("log-message")
    expect(messages.first).to_be_visible(timeout=WAIT)
    assert messages.count() >= 4
    customer = detail.locator(".from-customer[data-testid=log-message]")
    scores = [customer.nth(i).get_attribute("data-score") for i in range(customer.count())]
    assert len(scores) == 3 and all(s not in (None, "") for s in scores), scores
    assert all(-1.0 <= float(s) <= 1.0 for s in scores if s)
    expect(detail).to_contain_text("onerror=alert(1)")
    expect(rows.first).to_be_visible()
    expect(detail).to_contain_text(re.compile("person", re.I))
    expect(detail).to_contain_text("Handed off")
    assert page.locator("img[src=x]").count() == 0

    # Unmasking asks for a reason and labels what it shows.
    detail.get_by_test_id("unmask").click()
    page.locator("#dialog-input").fill("Customer asked for a copy")
    page.locator("#dialog-confirm").click()
    expect(detail.locator(".unmasked")).to_contain_text("Unmasked messages", timeout=WAIT)
    expect(detail.locator(".unmasked")).to_contain_text(story.token)
    save_screenshot(page, "owner-log-detail")
    assert alerts == []


def test_staff_member_is_told_the_page_is_for_the_owner(
    browser: Any, live_stack: Any, staff_account: Account
) -> None:
    page = _open(browser, live_stack, staff_account, "reports", viewport=DESKTOP)
    expect(page.get_by_test_id("not-owner")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("not-owner")).to_contain_text("This page is for the owner")
    expect(page.get_by_test_id("nav-reports")).to_be_hidden()


def test_policy_form_shows_the_error_for_an_out_of_range_value(
    browser: Any, live_stack: Any, owner_account: Account
) -> None:
    page = _open(browser, live_stack, owner_account, "settings", viewport=DESKTOP)
    form = page.get_by_test_id("policy-form")
    threshold = form.locator('[data-path="triggers.frustration.threshold"]')
    expect(threshold).to_be_visible(timeout=WAIT)
    kept = threshold.input_value()
    threshold.fill("5")
    page.get_by_test_id("policy-save").click()
    error = page.get_by_test_id("policy-error")
    expect(error).to_be_visible(timeout=WAIT)
    expect(error).to_contain_text("frustration")
    expect(page.get_by_test_id("policy-saved")).to_be_hidden()
    save_screenshot(page, "owner-settings-error")
    # Nothing was stored: a reload shows the old value.
    page.reload()
    expect(form.locator('[data-path="triggers.frustration.threshold"]')).to_have_value(
        kept, timeout=WAIT
    )


def test_staff_accounts_and_canned_replies(
    browser: Any, live_stack: Any, owner_account: Account
) -> None:
    page = _open(browser, live_stack, owner_account, "staff", viewport=DESKTOP)
    expect(page.get_by_test_id("staff-row").first).to_be_visible(timeout=WAIT)
    email = f"new-{uuid.uuid4().hex[:6]}@browser.example"
    page.get_by_test_id("staff-create-email").fill(email)
    page.get_by_test_id("staff-create-name").fill("Nora New")
    page.get_by_test_id("staff-create-password").fill("short")
    page.get_by_test_id("staff-create-submit").click()
    expect(page.locator("#staff-error")).to_contain_text("10 characters")
    page.get_by_test_id("staff-create-password").fill("a long enough password")
    page.get_by_test_id("staff-create-submit").click()
    new_row = page.get_by_test_id("staff-row").filter(has_text=email)
    expect(new_row).to_be_visible(timeout=WAIT)
    new_row.get_by_test_id("staff-deactivate").click()
    page.locator("#dialog-confirm").click()
    expect(new_row).to_contain_text("Deactivated", timeout=WAIT)

    page.get_by_test_id("nav-canned").click()
    title = f"Parcel delay {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("canned-title").fill(title)
    page.get_by_test_id("canned-text").fill(XSS)
    page.get_by_test_id("canned-save").click()
    reply = page.get_by_test_id("canned-row").filter(has_text=title)
    expect(reply).to_contain_text(XSS, timeout=WAIT)
    reply.get_by_test_id("canned-edit").click()
    page.get_by_test_id("canned-text").fill("We are sorry for the wait.")
    page.get_by_test_id("canned-save").click()
    expect(reply).to_contain_text("We are sorry for the wait.", timeout=WAIT)
    reply.get_by_test_id("canned-delete").click()
    page.locator("#dialog-confirm").click()
    expect(reply).to_have_count(0, timeout=WAIT)


def test_privacy_find_export_and_delete_a_customer(
    browser: Any, live_stack: Any, owner_account: Account
) -> None:
    from tandem.business.models import Customer

    email = f"pia-{uuid.uuid4().hex[:6]}@customer.example"
    engine = make_engine(live_stack.database_url)
    try:
        with session_scope(engine) as db:
            db.add(Customer(name="Pia Privacy", email=email, tier="gold"))
    finally:
        engine.dispose()

    page = _open(browser, live_stack, owner_account, "privacy", viewport=DESKTOP)
    page.get_by_test_id("privacy-search").fill(email)
    page.get_by_test_id("privacy-search").press("Enter")
    export = page.get_by_test_id("privacy-export")
    expect(export).to_have_count(1, timeout=WAIT)
    with page.expect_download(timeout=WAIT) as download:
        export.click()
    assert email in download.value.path().read_text(encoding="utf-8")

    # Deleting needs the customer's e-mail typed out; a wrong one deletes nothing.
    page.get_by_test_id("privacy-delete").click()
    page.locator("#dialog-input").fill("someone-else@customer.example")
    page.locator("#dialog-confirm").click()
    expect(page.locator("#dialog-error")).to_be_visible()
    page.locator("#dialog-input").fill(email)
    page.locator("#dialog-confirm").click()
    expect(page.locator("#privacy-results")).to_contain_text("Deleted", timeout=WAIT)
    audit = page.get_by_test_id("audit-row")
    expect(audit.first).to_be_visible(timeout=WAIT)
    page.get_by_test_id("privacy-search").fill(email)
    page.get_by_test_id("privacy-search").press("Enter")
    expect(page.locator("#privacy-results")).to_contain_text("No customer matches", timeout=WAIT)


def test_privacy_section_and_phone_layout(
    browser: Any, live_stack: Any, owner_account: Account, story: Story
) -> None:
    page = _open(browser, live_stack, owner_account, "privacy", viewport=PHONE)
    expect(page.locator("#retention")).to_contain_text("Oldest", timeout=WAIT)
    # The story's unmasking (test above, same module) or any earlier action is audited.
    expect(page.get_by_test_id("audit-row").first).to_be_visible(timeout=WAIT)
    save_screenshot(page, "owner-phone-privacy")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width

    page.get_by_test_id("nav-reports").click()
    expect(page.get_by_test_id("kpi-conversations")).to_have_attribute(
        "data-value", re.compile(r"^\d+$"), timeout=WAIT
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save_screenshot(page, "owner-phone", readme=True)
    page.get_by_test_id("nav-log").click()
    expect(page.get_by_test_id("log-row").first).to_be_visible(timeout=WAIT)
