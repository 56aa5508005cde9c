"""The ticket inbox in real browsers, on the live stack (real Rasa, actions and gateway).

Nobody is online, so a customer on /demo who asks for a person gets the offline form and
files a ticket through the real flow. A staff member finds it in the console's Tickets
tab, reads the request and the contact (recorded in the audit log), claims it, replies by
e-mail (the gateway's file outbox gets the .eml) and marks it done; the owner sees it in
the dashboard's inbox and in the reports.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tandem.conversations.models import Ticket
from tandem.db import make_engine, session_scope
from tandem.staff import service as staff_service
from tests.browser.conftest import DESKTOP, Account, login_context, save_screenshot
from tests.browser.test_journey import (
    conversation_id_of,
    conversation_token_of,
    messages_from,
    widget_send,
)

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

SLOW = 60_000  # ms: Rasa and the sentiment model share two cores with the browser
QUESTION = "My wool coat arrived with a torn sleeve. Can you send a replacement before Friday?"
CUSTOMER_EMAIL = "ines.tickets@example.com"


def api_client(base: str, account: Account) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    response = client.post(
        "/api/staff/login", json={"email": account.email, "password": account.password}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@contextmanager
def nobody_online(live_stack: Any, owner: httpx.Client) -> Iterator[None]:
    """Set every online member offline (through their own sessions, as their console
    would), so that the desk is unstaffed; put them back afterwards."""
    base = live_stack.gateway_url
    team = owner.get("/api/staff/team").json()["team"]
    engine = make_engine(live_stack.database_url)
    restore: list[tuple[dict[str, str], int]] = []
    try:
        for member in team:
            if member["presence"] != "online":
                continue
            with session_scope(engine) as session:
                new = staff_service.start_session(
                    session, staff_service.get_user(session, member["id"])
                )
                headers = {"Cookie": f"tandem_session={new.token}", "X-CSRF-Token": new.csrf_token}
            httpx.put(
                f"{base}/api/staff/presence", json={"state": "offline"}, headers=headers, timeout=30
            ).raise_for_status()
            restore.append((headers, int(member["capacity"])))
        assert all(m["presence"] != "online" for m in owner.get("/api/staff/team").json()["team"])
        yield
    finally:
        for headers, capacity in restore:
            httpx.put(
                f"{base}/api/staff/presence",
                json={"state": "online", "capacity": capacity},
                headers=headers,
                timeout=30,
            )
        engine.dispose()


def ticket_of(database_url: str, conversation_id: str) -> Ticket | None:
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            return session.scalars(
                select(Ticket).where(Ticket.conversation_id == conversation_id)
            ).one_or_none()
    finally:
        engine.dispose()


def wait_for_ticket(database_url: str, conversation_id: str, field: str) -> Ticket:
    """The conversation's ticket once `field` is filled in (the form's answers are stored
    as they come; the wording of the bot's questions is not what this test checks)."""
    deadline = time.monotonic() + SLOW / 1000
    while True:
        ticket = ticket_of(database_url, conversation_id)
        if ticket is not None and getattr(ticket, field):
            return ticket
        assert time.monotonic() < deadline, f"the ticket never got its {field}"
        time.sleep(0.3)


def wait_answered(base: str, conversation_id: str, token: str) -> None:
    """Until the bot (or the form) has answered the customer's last message."""
    deadline = time.monotonic() + SLOW / 1000
    while True:
        messages = httpx.get(
            f"{base}/api/conversations/{conversation_id}/messages",
            headers={"X-Conversation-Token": token},
            timeout=30,
        ).json()["messages"]
        last = max((m["id"] for m in messages if m["sender"] == "customer"), default=0)
        if any(m["id"] > last and m["sender"] in ("bot", "system") for m in messages):
            return
        assert time.monotonic() < deadline, "the customer's message was never answered"
        time.sleep(0.3)


def outbox_mail(outbox: Path, ticket_id: int) -> email.message.EmailMessage:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if mail["X-Tandem-Ticket"] == f"ticket-{ticket_id}":
            assert path.stat().st_mode & 0o777 == 0o600
            found.append(mail)
    assert len(found) == 1, f"expected one e-mail for ticket #{ticket_id}, found {len(found)}"
    return found[0]  # type: ignore[return-value]


def test_an_offline_request_is_answered_by_e_mail_and_closed_from_the_inbox(
    browser: Any, live_stack: Any, staff_account: Account, owner_account: Account
) -> None:
    base = live_stack.gateway_url
    owner_api = api_client(base, owner_account)
    before = owner_api.get("/api/owner/reports").json()["tickets"]
    dialogs: list[str] = []

    # 1. The customer asks while nobody is online: the offline form files a ticket.
    with nobody_online(live_stack, owner_api):
        customer_context = browser.new_context(base_url=base, viewport=DESKTOP)
        customer = customer_context.new_page()
        customer.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        customer.goto("/demo")
        customer.get_by_test_id("tandem-launcher").click()
        widget_send(customer, QUESTION)
        expect(messages_from(customer, "customer").last).to_contain_text("torn sleeve")
        conversation_id = conversation_id_of(customer)
        token = conversation_token_of(customer)
        wait_answered(base, conversation_id, token)
        # A complaint may escalate by itself; otherwise the customer asks for a person.
        if ticket_of(live_stack.database_url, conversation_id) is None:
            customer.get_by_test_id("tandem-human").click()
            wait_for_ticket(live_stack.database_url, conversation_id, "id")
            wait_answered(base, conversation_id, token)
        widget_send(customer, "Ines Moreau")
        wait_for_ticket(live_stack.database_url, conversation_id, "name")
        wait_answered(base, conversation_id, token)
        widget_send(customer, CUSTOMER_EMAIL)
        ticket = wait_for_ticket(live_stack.database_url, conversation_id, "email")
        expect(messages_from(customer, "bot").last).to_contain_text(f"#{ticket.id}", timeout=SLOW)
        assert (ticket.name, ticket.email, ticket.status) == ("Ines Moreau", CUSTOMER_EMAIL, "open")
        save_screenshot(customer, "tickets-1-customer")

    # 2. Staff: the Tickets tab lists it with the request; opening it shows the contact.
    staff_context = login_context(browser, base, staff_account, viewport=DESKTOP)
    staff = staff_context.new_page()
    staff.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    staff.goto("/staff")
    expect(staff.get_by_test_id("queue")).to_be_visible(timeout=SLOW)
    expect(staff.get_by_test_id("tickets-open-count")).not_to_be_empty(timeout=SLOW)
    staff.get_by_test_id("view-tickets").click()
    expect(staff.get_by_test_id("view-tickets")).to_have_attribute("aria-selected", "true")
    expect(staff.get_by_test_id("queue")).to_be_hidden()
    item = staff.locator(f'[data-testid="ticket-item"][data-ticket-id="{ticket.id}"]')
    expect(item).to_be_visible(timeout=SLOW)
    expect(item.get_by_test_id("ticket-excerpt")).to_contain_text("torn sleeve")
    expect(item).not_to_contain_text(CUSTOMER_EMAIL)  # the list shows no contact
    item.get_by_role("button").click()
    detail = staff.get_by_test_id("ticket-detail")
    expect(detail).to_have_attribute("data-ticket-id", str(ticket.id))
    expect(detail.get_by_test_id("ticket-contact-email")).to_have_text(CUSTOMER_EMAIL)
    expect(detail.get_by_test_id("ticket-contact-name")).to_have_text("Ines Moreau")
    expect(detail.get_by_test_id("ticket-request")).to_contain_text(QUESTION)
    expect(detail.get_by_test_id("ticket-request")).not_to_contain_text("Ines Moreau")

    # Claim, reply by e-mail, mark done.
    detail.get_by_test_id("ticket-claim").click()
    expect(detail.get_by_test_id("ticket-status")).to_have_text("In progress", timeout=SLOW)
    expect(detail.get_by_test_id("ticket-assigned")).to_have_text(staff_account.display_name)
    reply = "Hello Ines, we are sorry about the sleeve. A new coat leaves today by express."
    detail.get_by_test_id("ticket-reply-text").fill(reply)
    detail.get_by_test_id("ticket-reply-send").click()
    expect(detail.get_by_test_id("ticket-replies")).to_contain_text(reply, timeout=SLOW)
    save_screenshot(staff, "tickets-2-staff")
    mail = outbox_mail(live_stack.settings.mail_outbox_dir, ticket.id)
    assert mail["To"] == f"Ines Moreau <{CUSTOMER_EMAIL}>"
    assert f"ticket #{ticket.id}" in mail["Subject"]
    assert mail.get_content().strip() == reply  # type: ignore[attr-defined]

    detail.get_by_test_id("ticket-done-note").fill("Replacement sent by express.")
    detail.get_by_test_id("ticket-done").click()
    expect(detail.get_by_test_id("ticket-status")).to_have_text("Done", timeout=SLOW)
    expect(item).to_be_hidden()  # gone from the open list
    expect(detail.get_by_test_id("ticket-reply-send")).to_have_count(0)

    stored = ticket_of(live_stack.database_url, conversation_id)
    assert stored is not None and stored.status == "done" and stored.resolved_at is not None
    audit = owner_api.get("/api/owner/privacy/audit").json()["entries"]
    assert any(
        e["action"] == "ticket.contact_viewed" and e["target"] == f"ticket:{ticket.id}"
        for e in audit
    )

    # 3. The owner: the same inbox in the dashboard, and the reports count it.
    after = owner_api.get("/api/owner/reports").json()["tickets"]
    assert after["count"] == before["count"] + 1
    assert after["done"] == before["done"] + 1
    assert after["time_to_resolution"]["count"] == before["time_to_resolution"]["count"] + 1
    owner_context = login_context(browser, base, owner_account, viewport=DESKTOP)
    owner = owner_context.new_page()
    owner.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    owner.goto("/owner")
    owner.get_by_test_id("nav-tickets").click()
    owner.get_by_test_id("ticket-filter-done").click()
    done_item = owner.locator(f'[data-testid="ticket-item"][data-ticket-id="{ticket.id}"]')
    expect(done_item).to_be_visible(timeout=SLOW)
    owner.get_by_test_id("nav-reports").click()
    expect(owner.get_by_test_id("kpi-tickets-filed")).to_have_attribute(
        "data-value", str(after["count"]), timeout=SLOW
    )
    resolution = owner.get_by_test_id("chart-resolution")
    expect(resolution.locator("svg[role=img]")).to_have_count(1)
    expect(resolution.locator("table tbody tr")).to_have_count(2)  # p50 and p90

    assert dialogs == [], f"no page may open a dialog by itself: {dialogs}"
    for context in (customer_context, staff_context, owner_context):
        context.close()
    owner_api.close()
