"""The embeddable chat widget on the demo shop, in a real browser against the live stack.

The widget lives in an open shadow root; Playwright's selectors pierce it, so the
`data-testid`s of the DOM contract are used as they are.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tandem.business.profile import load_profile
from tests.browser.conftest import DESKTOP, PHONE, Account, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

BOT_WAIT = 30_000  # ms: Rasa on a busy 2-core machine


# ------------------------------------------------------------------ helpers


class Shop:
    """One visitor on /demo: their browser context, page and the dialogs that fired."""

    def __init__(self, context: BrowserContext, gateway: str) -> None:
        self.context = context
        self.gateway = gateway
        self.page: Page = context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.goto("/demo")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def testid(self, name: str) -> Locator:
        return self.page.get_by_test_id(name)

    def open(self) -> None:
        self.testid("tandem-launcher").click()
        expect(self.testid("tandem-panel")).to_be_visible()

    def messages(self, sender: str | None = None) -> Locator:
        selector = "[data-testid=tandem-message]"
        if sender:
            selector += f"[data-sender={sender}]"
        return self.page.locator(selector)

    def say(self, text: str) -> None:
        self.testid("tandem-input").fill(text)
        self.testid("tandem-input").press("Enter")

    def conversation_id(self) -> str:
        stored = self.page.evaluate(
            "() => JSON.parse(localStorage.getItem('tandem-widget:' + location.origin) || '{}')"
        )
        assert stored.get("conversationId"), stored
        return str(stored["conversationId"])

    def conversation_token(self) -> str:
        """The widget keeps the conversation's token beside its id."""
        stored = self.page.evaluate(
            "() => JSON.parse(localStorage.getItem('tandem-widget:' + location.origin) || '{}')"
        )
        assert stored.get("conversationToken"), stored
        return str(stored["conversationToken"])

    @property
    def token_header(self) -> dict[str, str]:
        return {"X-Conversation-Token": self.conversation_token()}

    def server_messages(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.gateway}/api/conversations/{self.conversation_id()}/messages",
            headers=self.token_header,
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json()["messages"])


@pytest.fixture
def shop(browser: Any, live_stack: Any) -> Iterator[Shop]:
    context = browser.new_context(base_url=live_stack.gateway_url, viewport=DESKTOP)
    yield Shop(context, live_stack.gateway_url)
    context.close()


@contextmanager
def staff_client(gateway: str, account: Account) -> Iterator[httpx.Client]:
    """The staff API, logged in as `account` (cookie and CSRF header)."""
    with httpx.Client(base_url=gateway, timeout=30) as client:
        response = client.post(
            "/api/staff/login", json={"email": account.email, "password": account.password}
        )
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def wait_until(condition: Callable[[], bool], timeout: float = BOT_WAIT / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# ------------------------------------------------------------------ tests


def test_chat_with_the_bot_survives_reloads_and_drops(shop: Shop, live_stack: Any) -> None:
    profile = load_profile(live_stack.settings.business_file)
    page = shop.page
    expect(page).to_have_title(re.compile(re.escape(profile.business.name)))

    # Open: the assistant says what it is, and a person is one click away.
    shop.open()
    expect(shop.testid("tandem-input")).to_be_focused()
    disclosure = shop.testid("tandem-disclosure")
    expect(disclosure).to_be_visible()
    expect(disclosure).to_contain_text("virtual assistant")
    expect(disclosure).to_contain_text(profile.bot.name)
    expect(shop.testid("tandem-human")).to_be_visible()
    expect(shop.testid("tandem-human")).to_have_text("Talk to a person")
    expect(shop.testid("tandem-connection")).to_have_attribute("data-state", "open")

    # Opening hours come from business.yml.
    shop.say("what are your opening hours?")
    expect(shop.messages("customer").last).to_have_text("what are your opening hours?")
    tuesday = profile.hours.for_weekday(1)
    assert tuesday is not None
    answer = shop.messages("bot").filter(has_text=profile.format_time(tuesday.opens)).last
    expect(answer).to_be_visible(timeout=BOT_WAIT)
    expect(answer).to_contain_text(profile.format_time(tuesday.closes))
    expect(answer).to_have_attribute("data-message-id", re.compile(r"^\d+$"))

    # Markup typed by a customer is text, never HTML.
    hostile = "<img src=x onerror=alert(1)>"
    shop.say(hostile)
    expect(shop.messages("customer").last).to_have_text(hostile)
    expect(shop.messages("bot")).to_have_count(2, timeout=BOT_WAIT)
    assert page.locator("[data-testid=tandem-messages] img").count() == 0
    assert shop.dialogs == []

    # Too long: the server's explanation, inline, and the text is still there to edit.
    long_text = "x" * (live_stack.settings.max_message_chars + 1)
    customer_before = shop.messages("customer").count()
    shop.say(long_text)
    expect(page.locator("[role=alert]").filter(has_text="the limit is")).to_be_visible()
    expect(shop.testid("tandem-input")).to_have_value(long_text)
    expect(shop.messages("customer")).to_have_count(customer_before)
    shop.testid("tandem-input").fill("")

    # Reload in the middle: the same conversation, the panel still open, history kept.
    conversation_id = shop.conversation_id()
    shown = shop.messages().count()
    page.reload()
    expect(shop.testid("tandem-panel")).to_be_visible()
    expect(shop.messages()).to_have_count(shown)
    expect(shop.messages("customer").filter(has_text=hostile)).to_have_count(1)
    assert shop.conversation_id() == conversation_id
    expect(shop.testid("tandem-connection")).to_have_attribute("data-state", "open")

    # The network drops: messages wait in the outbox, then arrive exactly once.
    offline_texts = ["where is your shop?", "how much does shipping cost?"]
    bot_before = shop.messages("bot").count()
    shop.context.set_offline(True)
    expect(shop.testid("tandem-connection")).to_contain_text("Reconnecting")
    for text in offline_texts:
        shop.say(text)
    pending = page.locator("[data-testid=tandem-message][data-pending=true]")
    expect(pending).to_have_count(2)
    expect(pending.first).to_contain_text("Waiting for connection")
    shop.context.set_offline(False)
    expect(pending).to_have_count(0, timeout=BOT_WAIT)
    expect(shop.testid("tandem-connection")).to_have_attribute("data-state", "open")
    # Both get their answers; the server stored each message once.
    wait_until(lambda: shop.messages("bot").count() >= bot_before + 2)
    stored = [m["text"] for m in shop.server_messages() if m["sender"] == "customer"]
    assert [stored.count(text) for text in offline_texts] == [1, 1]
    page.wait_for_timeout(500)  # a late duplicate from the socket would show by now
    for text in offline_texts:
        expect(shop.messages("customer").filter(has_text=text)).to_have_count(1)
    ids = page.locator("[data-testid=tandem-message]").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-message-id'))"
    )
    assert len(ids) == len(set(ids)) and all(ids), ids
    assert shop.dialogs == []


def test_handoff_to_a_person_and_rating(
    shop: Shop, live_stack: Any, staff_account: Account
) -> None:
    page = shop.page
    shop.open()
    # Quick replies: the bot's "Talk to a person" button hands the chat to the queue.
    shop.say("blorf zzyx quantum llama sprocket")
    quick = shop.testid("tandem-quick-reply").filter(has_text="Talk to a person")
    expect(quick).to_be_visible(timeout=BOT_WAIT)
    quick.click()
    expect(shop.testid("tandem-quick-reply")).to_have_count(0)
    queue = shop.testid("tandem-queue")
    expect(queue).to_be_visible(timeout=BOT_WAIT)
    expect(queue).to_have_text(re.compile(r"\d+"))

    # A person joins (through the staff API), writes with a link, then closes the chat.
    conversation_id = shop.conversation_id()
    with staff_client(live_stack.gateway_url, staff_account) as staff:
        base = f"/api/staff/conversations/{conversation_id}"
        staff.post(f"{base}/claim").raise_for_status()
        joined = shop.messages("system").filter(has_text=staff_account.display_name)
        expect(joined).to_be_visible()
        expect(queue).to_be_hidden()
        expect(shop.testid("tandem-panel")).to_contain_text(
            f"You're chatting with {staff_account.display_name}"
        )
        staff.post(
            f"{base}/reply",
            json={
                "text": "Our returns page: https://marigoldandmoss.example/returns. "
                "Not a link: javascript:alert(1)"
            },
        ).raise_for_status()
        from_staff = shop.messages("staff").last
        expect(from_staff).to_contain_text(staff_account.display_name)
        link = from_staff.locator("a")
        expect(link).to_have_count(1)
        expect(link).to_have_attribute("href", "https://marigoldandmoss.example/returns")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(link).to_have_attribute("target", "_blank")
        expect(from_staff).to_contain_text("javascript:alert(1)")
        save_screenshot(page, "widget-desktop", readme=True)
        staff.post(f"{base}/close", json={"resolution": "answered"}).raise_for_status()

    csat = shop.testid("tandem-csat")
    expect(csat).to_be_visible()
    csat.locator("textarea").fill("Quick and friendly")
    shop.testid("tandem-csat-4").click()
    expect(shop.testid("tandem-csat-thanks")).to_be_visible()
    rated = httpx.get(
        f"{live_stack.gateway_url}/api/conversations/{conversation_id}",
        headers=shop.token_header,
    ).json()
    assert rated["csat"] == 4 and rated["state"] == "closed"
    assert shop.dialogs == []


def test_keyboard_only(shop: Shop) -> None:
    page = shop.page
    launcher = shop.testid("tandem-launcher")
    for _ in range(60):
        page.keyboard.press("Tab")
        if launcher.evaluate("el => el.getRootNode().activeElement === el"):
            break
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(shop.testid("tandem-panel")).to_be_visible()
    expect(shop.testid("tandem-input")).to_be_focused()

    # Shift+Enter is a new line; Enter sends.
    page.keyboard.type("hello")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("there")
    expect(shop.testid("tandem-input")).to_have_value("hello\nthere")
    page.keyboard.press("Enter")
    expect(shop.messages("customer").last).to_have_text("hello\nthere")
    expect(shop.testid("tandem-input")).to_have_value("")
    page.keyboard.press("Tab")
    expect(shop.testid("tandem-send")).to_be_focused()

    # Escape closes and gives focus back to the launcher.
    page.keyboard.press("Escape")
    expect(shop.testid("tandem-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(shop.testid("tandem-input")).to_be_focused()
    expect(shop.testid("tandem-messages")).to_have_attribute("role", "log")
    expect(shop.testid("tandem-panel")).to_have_attribute("role", "dialog")


def test_phone_layout(browser: Any, live_stack: Any, staff_account: Account) -> None:
    context = browser.new_context(base_url=live_stack.gateway_url, viewport=PHONE)
    try:
        shop = Shop(context, live_stack.gateway_url)
        shop.open()
        box = shop.testid("tandem-panel").bounding_box()
        assert box is not None
        assert box["width"] == PHONE["width"] and box["height"] == PHONE["height"]
        shop.say("do you have a linen shirt?")
        expect(shop.messages("bot").first).to_be_visible(timeout=BOT_WAIT)
        save_screenshot(shop.page, "widget-phone", readme=True)

        # The header's "Talk to a person" queues the chat; closed unanswered, it asks for
        # a rating (and leaves the shared queue as it was).
        shop.testid("tandem-human").click()
        expect(shop.messages("customer").last).to_have_text("Talk to a person")
        expect(shop.testid("tandem-queue")).to_be_visible(timeout=BOT_WAIT)
        with staff_client(live_stack.gateway_url, staff_account) as staff:
            staff.post(
                f"/api/staff/conversations/{shop.conversation_id()}/close",
                json={"resolution": "phone layout test"},
            ).raise_for_status()
        expect(shop.testid("tandem-queue")).to_be_hidden()
        shop.testid("tandem-csat-5").click()
        expect(shop.testid("tandem-csat-thanks")).to_be_visible()

        shop.testid("tandem-close").click()
        expect(shop.testid("tandem-panel")).to_be_hidden()
        expect(shop.testid("tandem-launcher")).to_be_visible()
    finally:
        context.close()


# ------------------------------------------------------------------ a scripted gateway

FAKE = "http://shop.test"
WIDGET_JS = Path(__file__).resolve().parents[2] / "bot" / "static" / "widget.js"


class ScriptedGateway:
    """The gateway's HTTP API and chat socket, played by the test (Playwright routing).

    For events the live stack cannot be made to send on demand: typing, live queue
    updates and the offline contact form (the live stack always has someone on duty).
    """

    def __init__(self, context: BrowserContext) -> None:
        self.posted: list[dict[str, Any]] = []
        self.sockets: list[Any] = []
        self.next_id = 1
        context.route(f"{FAKE}/**", self._http)
        context.route_web_socket(re.compile(r"^ws://shop\.test/ws/chat/.*"), self._socket)

    def _socket(self, socket: Any) -> None:
        # Not connected to any server: the test plays the gateway's side.
        self.sockets.append(socket)

    def message(self, sender: str, text: str, **extra: Any) -> dict[str, Any]:
        self.next_id += 1
        return {
            "id": self.next_id,
            "conversation_id": "c-1",
            "sender": sender,
            "text": text,
            "buttons": [],
            "kind": None,
            "author": None,
            "client_message_id": None,
            "status": "stored",
            "created_at": "2026-11-24T21:00:00+00:00",
        } | extra

    def push(self, event: dict[str, Any]) -> None:
        wait_until(lambda: bool(self.sockets), timeout=10)
        self.sockets[-1].send(json.dumps(event))

    def _http(self, route: Any) -> None:
        request = route.request
        path = request.url.removeprefix(FAKE).split("?")[0]
        if path == "/page":
            route.fulfill(content_type="text/html", body=SCRIPTED_PAGE)
        elif path == "/widget.js":
            route.fulfill(content_type="text/javascript", body=WIDGET_JS.read_text())
        elif path == "/api/business":
            route.fulfill(
                json={
                    "name": "Test Shop",
                    "assistant_name": "Robo",
                    "disclosure": "You're chatting with Robo, Test Shop's virtual assistant.",
                    "talk_to_person": "Talk to a person",
                }
            )
        elif path == "/api/conversations" and request.method == "POST":
            route.fulfill(
                status=201, json={"id": "c-1", "token": "t-1", "state": "bot", "csat": None}
            )
        elif path == "/api/conversations/c-1":
            route.fulfill(json={"id": "c-1", "state": "bot", "csat": None})
        elif path == "/api/conversations/c-1/messages" and request.method == "GET":
            route.fulfill(json={"messages": []})
        elif path == "/api/conversations/c-1/messages":
            body = request.post_data_json
            self.posted.append(body)
            if not body["text"].strip():
                route.fulfill(status=422, json={"detail": "The message is empty. Please type."})
                return
            stored = self.message(
                "customer", body["text"], client_message_id=body.get("client_message_id")
            )
            route.fulfill(json={"message": stored, "replies": [], "duplicate": False})
        else:
            route.fulfill(status=404, json={"detail": "Not found."})


SCRIPTED_PAGE = f"""<!doctype html><html><head><title>Another shop</title>
<style>div {{ display: none !important; }} button {{ background: hotpink !important; }}</style>
</head><body><h1>Another shop</h1>
<script src="{FAKE}/widget.js" data-gateway="{FAKE}" data-business="Test Shop"
 data-color="#aa0000" data-position="left" async></script></body></html>"""


def test_widget_renders_queue_typing_and_the_offline_form(browser: Any) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        gateway = ScriptedGateway(context)
        page = context.new_page()
        page.goto(f"{FAKE}/page")
        launcher = page.get_by_test_id("tandem-launcher")
        # The host page's hostile CSS does not reach into the widget.
        expect(launcher).to_be_visible()
        assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(170, 0, 0)"
        box = launcher.bounding_box()
        assert box is not None and box["x"] < 100  # data-position="left"
        launcher.click()
        expect(page.get_by_test_id("tandem-disclosure")).to_contain_text("Robo")
        expect(page.get_by_test_id("tandem-connection")).to_have_attribute("data-state", "open")

        # An empty message: the server's words, inline.
        page.get_by_test_id("tandem-input").press("Enter")
        expect(page.get_by_role("alert").filter(has_text="empty")).to_be_visible()

        gateway.push({"type": "typing", "sender": "bot", "on": True})
        expect(page.get_by_test_id("tandem-typing")).to_be_visible()
        expect(page.get_by_test_id("tandem-typing")).to_contain_text("Robo is typing")
        gateway.push({"type": "typing", "sender": "bot", "on": False})
        expect(page.get_by_test_id("tandem-typing")).to_be_hidden()

        queue = page.get_by_test_id("tandem-queue")
        gateway.push(
            {"type": "queue", "position": 3, "wait_seconds": 240, "text": "You're now number 3."}
        )
        expect(queue).to_contain_text("3")
        gateway.push(
            {"type": "queue", "position": 2, "wait_seconds": 120, "text": "You're now number 2."}
        )
        expect(queue).to_contain_text("number 2")

        # Nobody can take it after all: the server asks for a name, then a contact.
        ask_name = gateway.message(
            "bot", "Nobody is free right now. What's your name?", kind="offline_contact"
        )
        gateway.push({"type": "message", "message": ask_name})
        expect(queue).to_be_hidden()
        form = page.get_by_test_id("tandem-offline-form")
        expect(form).to_be_visible()
        form.get_by_label("Your name").fill("Jane Tester")
        form.get_by_role("button", name="Send").click()
        expect(form).to_have_count(0)
        wait_until(lambda: any(p["text"] == "Jane Tester" for p in gateway.posted), timeout=10)
        ask_contact = gateway.message(
            "bot",
            "Thanks, Jane. What e-mail address or phone number should we use?",
            kind="offline_contact",
        )
        gateway.push({"type": "message", "message": ask_contact})
        expect(form.get_by_label("E-mail address or phone number")).to_be_visible()
        done = gateway.message(
            "bot", "Thank you. I've saved your request as ticket #7.", kind="offline_contact"
        )
        gateway.push({"type": "message", "message": done})
        expect(form).to_have_count(0)  # the ticket is saved: no question is open
        expect(page.get_by_test_id("tandem-message").last).to_contain_text("ticket #7")

        # The server drops the socket: "Reconnecting…", then back (with back-off) by itself.
        connection = page.get_by_test_id("tandem-connection")
        gateway.sockets[-1].close(code=1011, reason="restart")
        expect(connection).to_have_text("Reconnecting…")
        expect(connection).to_have_attribute("data-state", "open", timeout=10_000)
        assert len(gateway.sockets) == 2
    finally:
        context.close()
