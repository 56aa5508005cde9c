"""The whole product in real browsers: a customer on /demo, a staff member on /staff and
the owner on /owner, against the real gateway, Rasa, action server and sentiment model.

One test, in the order of the issue's journey, because each step builds on the last:
1. the customer asks for opening hours and gets the business file's hours;
2. gets angry, is escalated and sees their queue position;
3. staff (second browser context) are notified, claim, see reasons and mood, and reply;
4. the customer sees the reply; 5. staff return the chat to the bot, which answers;
6. staff close and the customer rates 5; 7. the owner sees it in the log and the reports,
   and exports CSV.
"""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from actions.info import weekly_lines
from tandem.business.profile import load_profile
from tests.browser.conftest import DESKTOP, Account, login_context, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

ANGRY = [
    "Where is my order?? I have been waiting for three weeks, this is ridiculous!!!",
    "This is the WORST service ever. NOBODY ANSWERS MY EMAILS. I am furious!!!",
    "I am so angry, this is a complete scam and a disgrace!!!",
]
SLOW = 60_000  # ms: Rasa and the sentiment model share two cores with the browser


def widget_send(page: Page, text: str) -> None:
    box = page.get_by_test_id("tandem-input")
    box.fill(text)
    page.get_by_test_id("tandem-send").click()


def messages_from(page: Page, sender: str) -> Any:
    return page.locator(f'[data-testid="tandem-message"][data-sender="{sender}"]')


def conversation_id_of(page: Page) -> str:
    """The widget keeps its conversation id in localStorage (that is how reloads resume)."""
    found = page.evaluate(
        """() => Object.keys(localStorage)
              .filter(k => k.startsWith('tandem'))
              .map(k => localStorage.getItem(k))
              .map(v => (v || '').match(/[0-9a-f]{32}/))
              .filter(Boolean).map(m => m[0])"""
    )
    assert found, "the widget stored no conversation id"
    return str(found[0])


def conversation_token_of(page: Page) -> str:
    """The conversation's token, kept beside its id."""
    found = page.evaluate(
        """() => Object.keys(localStorage).filter(k => k.startsWith('tandem'))
              .map(k => { try { return JSON.parse(localStorage.getItem(k)); } catch (e) {} })
              .map(v => v && v.conversationToken).filter(Boolean)"""
    )
    assert found, "the widget stored no conversation token"
    return str(found[0])


def wait_for_sentiment_model(base: str) -> None:
    """Turns do not wait for a loading model; the journey escalates on sentiment."""
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/healthz", timeout=30).json()["sentiment"] != "ok":
        assert time.monotonic() < deadline, "the sentiment model did not load"
        time.sleep(0.5)


def reports(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/owner/reports")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_customer_staff_and_owner_journey(
    browser: Any, live_stack: Any, staff_account: Account, owner_account: Account
) -> None:
    base = live_stack.gateway_url
    profile = load_profile(live_stack.settings.business_file)
    dialogs: list[str] = []
    wait_for_sentiment_model(base)

    # The owner's figures before, through the API, to compare with the charts afterwards.
    owner_api = httpx.Client(base_url=base, timeout=30)
    login = owner_api.post(
        "/api/staff/login",
        json={"email": owner_account.email, "password": owner_account.password},
    )
    login.raise_for_status()
    before = reports(owner_api)

    # Staff are logged in and online before the customer arrives.
    staff_context = login_context(browser, base, staff_account, viewport=DESKTOP)
    staff = staff_context.new_page()
    staff.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    staff.goto("/staff")
    expect(staff.get_by_test_id("queue")).to_be_visible()
    staff.get_by_test_id("presence-select").select_option("online")

    # 1. Opening hours on /demo.
    customer_context = browser.new_context(base_url=base, viewport=DESKTOP)
    customer = customer_context.new_page()
    customer.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    customer.goto("/demo")
    customer.get_by_test_id("tandem-launcher").click()
    expect(customer.get_by_test_id("tandem-disclosure")).to_contain_text("virtual assistant")
    expect(customer.get_by_test_id("tandem-human")).to_be_visible()
    widget_send(customer, "what are your opening hours?")
    expected_lines = [line for line in weekly_lines(profile) if line.strip()]
    answer = messages_from(customer, "bot").last
    for line in expected_lines[:3]:
        expect(answer).to_contain_text(line.strip().lstrip("-• ").strip(), timeout=SLOW)
    conversation_id = conversation_id_of(customer)
    save_screenshot(customer, "journey-1-hours")

    # 2. Angry: escalated, and the queue position shows.
    for text in ANGRY:
        widget_send(customer, text)
        expect(messages_from(customer, "customer").last).to_contain_text(text[:20])
        if customer.get_by_test_id("tandem-queue").is_visible():
            break
        customer.wait_for_timeout(1500)
    queue_banner = customer.get_by_test_id("tandem-queue")
    expect(queue_banner).to_be_visible(timeout=SLOW)
    expect(queue_banner).to_contain_text(re.compile(r"\d"))
    save_screenshot(customer, "journey-2-queued")

    # 3. Staff: notification, title count, claim, reasons, mood timeline, reply.
    item = staff.locator(f'[data-testid="queue-item"][data-conversation-id="{conversation_id}"]')
    expect(item).to_be_visible(timeout=SLOW)
    expect(staff.get_by_test_id("notification").first).to_be_visible(timeout=SLOW)
    expect(staff).to_have_title(re.compile(r"^\(\d+\)"))
    expect(item.get_by_test_id("queue-reasons")).not_to_be_empty()
    item.get_by_test_id("claim").click()
    expect(staff.get_by_test_id("context-reasons")).not_to_be_empty(timeout=SLOW)
    sparkline = staff.get_by_test_id("mood-sparkline")
    expect(sparkline).to_be_visible()
    assert int(sparkline.get_attribute("data-points") or 0) >= 2
    expect(staff.get_by_test_id("transcript")).to_contain_text("WORST service")
    reply = "Hi, Sam here. I am sorry about the wait: I am looking at your order right now."
    staff.get_by_test_id("reply-input").fill(reply)
    staff.get_by_test_id("reply-send").click()
    save_screenshot(staff, "journey-3-staff")

    # 4. The customer sees the reply, and who joined.
    expect(messages_from(customer, "staff").last).to_contain_text(reply, timeout=SLOW)
    expect(customer.get_by_test_id("tandem-panel")).to_contain_text(staff_account.display_name)
    expect(queue_banner).to_be_hidden()

    # 5. Back to the bot, which answers the next question.
    staff.get_by_test_id("return-to-bot").click()
    returned = profile.say("handoff_returned")
    expect(messages_from(customer, "bot").last).to_contain_text(returned[:40], timeout=SLOW)
    widget_send(customer, "where is your shop located?")
    expect(messages_from(customer, "bot").last).to_contain_text("Milwaukee", timeout=SLOW)

    # 6. Staff close with a resolution; the customer rates 5.
    staff.get_by_test_id("close-resolution").fill("Order located; customer reassured.")
    staff.get_by_test_id("close-submit").click()
    expect(customer.get_by_test_id("tandem-csat")).to_be_visible(timeout=SLOW)
    customer.get_by_test_id("tandem-csat-5").click()
    expect(customer.get_by_test_id("tandem-csat-thanks")).to_be_visible(timeout=SLOW)
    stored = owner_api.get(
        f"/api/conversations/{conversation_id}",
        headers={"X-Conversation-Token": conversation_token_of(customer)},
    ).json()
    assert stored["state"] == "closed"

    # 7. The owner: the conversation in the log with its scores, the charts moved, CSV.
    owner_context = login_context(browser, base, owner_account, viewport=DESKTOP)
    owner = owner_context.new_page()
    owner.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    owner.goto("/owner")
    owner.get_by_test_id("nav-log").click()
    row = owner.locator(f'[data-testid="log-row"][data-conversation-id="{conversation_id}"]')
    expect(row).to_be_visible(timeout=SLOW)
    row.click()
    detail = owner.get_by_test_id("log-detail")
    expect(detail).to_be_visible()
    scored = detail.locator('[data-testid="log-message"][data-score]')
    expect(scored.first).to_be_visible()
    scores = [float(s) for s in scored.evaluate_all("els => els.map(e => e.dataset.score)") if s]
    assert min(scores) < -0.3, "the angry messages are scored negative"

    after = reports(owner_api)
    assert after["outcomes"]["handed_off"]["count"] == before["outcomes"]["handed_off"]["count"] + 1
    assert after["csat"]["count"] == before["csat"]["count"] + 1
    owner.get_by_test_id("nav-reports").click()
    tile = owner.get_by_test_id("kpi-handed-off-share")
    expect(tile).to_have_attribute("data-value", re.compile(r"\d"))
    shown = float(tile.get_attribute("data-value") or "nan")
    assert shown == pytest.approx(after["outcomes"]["handed_off"]["share"], abs=0.01)
    csat_tile = owner.get_by_test_id("kpi-csat")
    assert float(csat_tile.get_attribute("data-value") or "nan") == pytest.approx(
        after["csat"]["average"], abs=0.01
    )
    expect(owner.get_by_test_id("chart-outcomes")).to_contain_text("Handed off")
    expect(owner.get_by_test_id("chart-csat").locator("svg")).to_be_visible()
    save_screenshot(owner, "journey-7-owner")

    owner.get_by_test_id("nav-log").click()
    with owner.expect_download() as download_info:
        owner.get_by_test_id("export-conversations").click()
    content = download_info.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert any(conversation_id in ",".join(r.values()) for r in rows)

    assert dialogs == [], f"no page may open a dialog by itself: {dialogs}"
    for context in (customer_context, staff_context, owner_context):
        context.close()
    owner_api.close()
