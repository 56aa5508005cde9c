"""The staff console (/staff) in real browsers against the live stack.

Two staff members work side by side in two browser contexts: both are notified of a new
escalation, one claims it and it disappears from the other's queue; the claimer sees the
customer's context, uses a canned reply, replies, writes an internal note and closes.
A customer message holding HTML is shown as text, never run.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from handoff.identity import sign_identity
from tests.browser.conftest import DESKTOP, PHONE, Account, make_account, save_screenshot
from tests.chat_client import WidgetTokens

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

SLOW = 30_000  # ms: Rasa and the sentiment model share two cores with the browser
XSS = "<img src=x onerror=alert(1)>"


def log_in(request: Any, account: Account) -> str:
    """Log in through the API (`request`: a browser context's or an httpx client);
    returns the CSRF token. The live stack throttles logins per IP (5 a minute), so a
    429 is waited out instead of failing the test."""
    credentials = {"email": account.email, "password": account.password}
    for _ in range(4):
        if isinstance(request, httpx.Client):
            response = request.post("/api/staff/login", json=credentials)
            status, headers, body = response.status_code, response.headers, response.json()
        else:
            response = request.post("/api/staff/login", data=credentials)
            status, headers, body = response.status, response.headers, response.json()
        if status != 429:
            assert status == 200, body
            return str(body["csrf_token"])
        time.sleep(int(headers.get("retry-after", "10")) + 1)
    raise AssertionError("still throttled after several minutes")


def login_context(browser: Any, base_url: str, account: Account, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, **options)
    log_in(context.request, account)
    return context


def waiting_count(page: Page) -> int:
    match = re.match(r"^\((\d+)\) ", page.title())
    return int(match.group(1)) if match else 0


def customer_messages(client: httpx.Client, conversation_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/conversations/{conversation_id}/messages")
    response.raise_for_status()
    return response.json()["messages"]  # type: ignore[no-any-return]


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the condition")
        time.sleep(0.3)


def open_console(page: Page) -> None:
    page.goto("/staff")
    expect(page.get_by_test_id("queue")).to_be_visible(timeout=SLOW)
    page.get_by_test_id("presence-select").select_option("online")
    expect(page.get_by_test_id("presence-select")).to_have_value("online")


def test_login_form_shows_errors(browser: Any, live_stack: Any) -> None:
    account = make_account(live_stack.database_url, "staff", "Login Tester")
    context = browser.new_context(base_url=live_stack.gateway_url, viewport=DESKTOP)
    page = context.new_page()
    page.goto("/staff")
    expect(page.get_by_test_id("login-email")).to_be_visible()
    page.get_by_test_id("login-email").fill(account.email)
    page.get_by_test_id("login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    expect(page.get_by_test_id("login-error")).not_to_be_empty()
    page.get_by_test_id("login-password").fill(account.password)
    for _ in range(4):
        page.get_by_test_id("login-submit").click()
        outcome = page.locator(
            '[data-testid="queue"]:visible, [data-testid="login-error"]:has-text("Too many")'
        )
        expect(outcome).to_be_visible(timeout=SLOW)
        throttled = re.search(r"in (\d+) seconds", page.get_by_test_id("login-error").inner_text())
        if page.get_by_test_id("queue").is_visible() or throttled is None:
            break
        time.sleep(int(throttled.group(1)) + 1)  # other tests' logins share the IP limit
    expect(page.get_by_test_id("queue")).to_be_visible(timeout=SLOW)
    expect(page.get_by_test_id("login-email")).to_be_hidden()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-email")).to_be_visible()
    assert context.request.get("/api/staff/me").status == 401
    context.close()


def test_two_staff_share_the_queue_and_one_handles_the_chat(
    browser: Any, live_stack: Any, owner_account: Account
) -> None:
    base = live_stack.gateway_url
    alex = make_account(live_stack.database_url, "staff", "Alex Agent")
    blair = make_account(live_stack.database_url, "staff", "Blair Agent")

    # The owner adds a canned reply; the console lists it.
    owner = httpx.Client(base_url=base, timeout=30)
    owner_csrf = log_in(owner, owner_account)
    canned_title = f"Order check {uuid.uuid4().hex[:6]}"
    canned_text = "Thanks for waiting! I am checking your order right now."
    created = owner.post(
        "/api/owner/canned-replies",
        json={"title": canned_title, "text": canned_text},
        headers={"X-CSRF-Token": owner_csrf},
    )
    assert created.status_code == 201, created.text

    dialogs: list[str] = []
    contexts = [
        login_context(browser, base, account, viewport=DESKTOP) for account in (alex, blair)
    ]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_console(page)
    a, b = pages
    before = [waiting_count(page) for page in pages]

    # A known customer (signed identity) writes HTML, then asks for a person.
    customer = httpx.Client(base_url=base, timeout=60, auth=WidgetTokens())
    expires = int(time.time()) + 600
    secret = live_stack.settings.identity_secret
    started = customer.post(
        "/api/conversations",
        json={
            "customer_id": "1",
            "expires_at": expires,
            "signature": sign_identity("1", secret, expires),
        },
    )
    assert started.status_code == 201, started.text
    conversation_id = started.json()["id"]
    for text in (XSS, "This is ridiculous, my order is late again!!", "I want to talk to a person"):
        sent = customer.post(f"/api/conversations/{conversation_id}/messages", json={"text": text})
        assert sent.status_code == 200, sent.text
    wait_for(
        lambda: customer.get(f"/api/conversations/{conversation_id}").json()["state"] == "queued"
    )

    # Both see it live, with reasons, a toast and the count in the title.
    items = [
        page.locator(f'[data-testid="queue-item"][data-conversation-id="{conversation_id}"]')
        for page in pages
    ]
    for page, item, count in zip(pages, items, before, strict=True):
        expect(item).to_be_visible(timeout=SLOW)
        expect(item.get_by_test_id("queue-reasons")).not_to_be_empty()
        expect(item.get_by_test_id("queue-wait")).not_to_be_empty()
        expect(item.get_by_test_id("queue-value")).to_contain_text("$")
        expect(item.get_by_test_id("queue-mood")).to_contain_text("%")
        expect(page.get_by_test_id("notification")).to_be_visible()
        expect(page).to_have_title(f"({count + 1}) Tandem staff")

    # Alex claims; it leaves Blair's queue at once and shows in Alex's "Mine".
    items[0].get_by_test_id("claim").click()
    expect(items[1]).to_have_count(0, timeout=SLOW)
    expect(items[0]).to_have_count(0, timeout=SLOW)
    expect(
        a.locator(f'[data-testid="mine-item"][data-conversation-id="{conversation_id}"]')
    ).to_be_visible()
    expect(b).to_have_title(f"({before[1]}) Tandem staff" if before[1] else "Tandem staff")

    # Context: profile, orders, reasons, intents, summary, mood sparkline.
    expect(a.get_by_test_id("context-reasons")).to_contain_text("high-value customer")
    expect(a.get_by_test_id("context-profile")).to_contain_text("Olivia Bennett")
    expect(a.get_by_test_id("context-profile")).to_contain_text("Verified")
    expect(a.get_by_test_id("context-orders")).not_to_be_empty()
    expect(a.get_by_test_id("context-intents")).not_to_be_empty()
    expect(a.get_by_test_id("context-summary")).to_contain_text("ridiculous")
    context_api = contexts[0].request.get(f"/api/staff/conversations/{conversation_id}").json()
    scored = len(context_api["mood_timeline"])
    assert scored >= 1
    expect(a.get_by_test_id("mood-sparkline")).to_have_attribute("data-points", str(scored))

    # The HTML the customer typed is text in the transcript; nothing ran.
    transcript = a.get_by_test_id("transcript")
    expect(
        transcript.locator('[data-testid="transcript-message"][data-sender="customer"]').filter(
            has_text=XSS
        )
    ).to_have_count(1)
    assert transcript.locator("img").count() == 0

    # A canned reply, edited and sent; the customer receives it.
    a.get_by_test_id("canned-select").select_option(label=canned_title)
    reply_box = a.get_by_test_id("reply-input")
    expect(reply_box).to_have_value(canned_text)
    reply_box.press("End")
    reply_box.type(" Order found.")
    a.get_by_test_id("reply-send").click()
    expect(reply_box).to_have_value("")
    reply = canned_text + " Order found."
    expect(
        transcript.locator('[data-testid="transcript-message"][data-sender="staff"]').filter(
            has_text=reply
        )
    ).to_have_count(1, timeout=SLOW)
    wait_for(
        lambda: any(
            m["sender"] == "staff" and m["text"] == reply
            for m in customer_messages(customer, conversation_id)
        )
    )

    # An internal note: shown to staff, never to the customer.
    note = f"VIP, be generous {uuid.uuid4().hex[:4]}"
    a.get_by_test_id("note-toggle").check()
    reply_box.fill(note)
    a.get_by_test_id("reply-send").click()
    expect(
        transcript.locator('[data-testid="transcript-message"][data-internal="true"]').filter(
            has_text=note
        )
    ).to_have_count(1, timeout=SLOW)
    a.get_by_test_id("note-toggle").uncheck()
    assert all(note not in m["text"] for m in customer_messages(customer, conversation_id))

    a.get_by_test_id("transcript").evaluate("node => { node.scrollTop = node.scrollHeight; }")
    save_screenshot(a, "staff-desktop", readme=True)

    # The same conversation on a phone: tabs, one column.
    # (A second page in Alex's context: the same session, no second login.)
    phone = contexts[0].new_page()
    phone.set_viewport_size(PHONE)
    phone.goto("/staff")
    mine = phone.locator(f'[data-testid="mine-item"][data-conversation-id="{conversation_id}"]')
    expect(mine).to_be_visible(timeout=SLOW)
    mine.click()
    expect(phone.get_by_test_id("transcript")).to_contain_text(reply)
    expect(phone.get_by_test_id("reply-input")).to_be_visible()
    expect(phone.get_by_test_id("queue")).to_be_hidden()
    save_screenshot(phone, "staff-phone", readme=True)
    # The tabs follow the ARIA tabs pattern: arrow keys move between them.
    phone.locator("#tab-chat").focus()
    phone.keyboard.press("ArrowRight")
    expect(phone.locator("#tab-context")).to_be_focused()
    expect(phone.locator("#tab-context")).to_have_attribute("aria-selected", "true")
    expect(phone.get_by_test_id("context-profile")).to_be_visible()
    phone.keyboard.press("Home")
    expect(phone.locator("#tab-queue")).to_have_attribute("aria-selected", "true")
    expect(phone.get_by_test_id("queue")).to_be_visible()
    phone.close()

    # Closing needs a resolution note.
    a.get_by_test_id("close-submit").click()
    expect(a.get_by_test_id("action-error")).to_be_visible()
    expect(a.get_by_test_id("action-error")).to_contain_text("resolution")
    a.get_by_test_id("close-resolution").fill("Order located; customer reassured.")
    a.get_by_test_id("close-submit").click()
    expect(a.get_by_test_id("action-error")).to_be_hidden()
    expect(a.locator("#chat-status")).to_contain_text("Closed", timeout=SLOW)
    expect(
        a.locator(f'[data-testid="mine-item"][data-conversation-id="{conversation_id}"]')
    ).to_have_count(0, timeout=SLOW)
    assert customer.get(f"/api/conversations/{conversation_id}").json()["state"] == "closed"

    assert dialogs == []
    for context in contexts:
        context.close()
    owner.close()
    customer.close()


def test_a_lost_claim_race_is_explained(browser: Any, live_stack: Any) -> None:
    """Claiming what a colleague just took shows a clear 409 message and refreshes."""
    base = live_stack.gateway_url
    casey = make_account(live_stack.database_url, "staff", "Casey Agent")
    dana = make_account(live_stack.database_url, "staff", "Dana Agent")
    context = login_context(browser, base, casey, viewport=DESKTOP)
    page = context.new_page()
    open_console(page)

    customer = httpx.Client(base_url=base, timeout=60, auth=WidgetTokens())
    conversation_id = customer.post("/api/conversations", json={}).json()["id"]
    customer.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "I want to talk to a person"},
    ).raise_for_status()
    item = page.locator(f'[data-testid="queue-item"][data-conversation-id="{conversation_id}"]')
    expect(item).to_be_visible(timeout=SLOW)

    # Dana wins the race: her claim lands just before Casey's request reaches the server.
    other = httpx.Client(base_url=base, timeout=30)
    csrf = log_in(other, dana)

    def dana_first(route: Any) -> None:
        claimed = other.post(
            f"/api/staff/conversations/{conversation_id}/claim", headers={"X-CSRF-Token": csrf}
        )
        assert claimed.status_code == 200, claimed.text
        route.continue_()

    page.route("**/api/staff/conversations/*/claim", dana_first)
    item.get_by_test_id("claim").click()
    expect(page.get_by_test_id("action-error")).to_contain_text("Someone else", timeout=SLOW)
    expect(item).to_have_count(0, timeout=SLOW)
    other.post(
        f"/api/staff/conversations/{conversation_id}/close",
        json={"resolution": "test cleanup"},
        headers={"X-CSRF-Token": csrf},
    )
    context.close()
    customer.close()
    other.close()
