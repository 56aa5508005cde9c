"""Whole conversations through the gateway, against the real Rasa and action servers.

The stack (action server, Rasa, gateway) starts once per session (see conftest.py)
on a seeded SQLite database. Expected answers are computed from business.yml and the
database, never written here, so the tests follow the data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import connect

from tandem.business.models import Booking, Order, Product
from tandem.business.profile import BusinessProfile, load_profile
from tandem.conversations.models import Message
from tandem.db import make_engine, session_scope
from tests.chat_client import WidgetTokens
from tests.conftest import LiveStack
from tests.stored_rows import events

pytestmark = pytest.mark.rasa


class Chat:
    """One customer's conversation over the HTTP API."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        response = client.post("/api/conversations")
        assert response.status_code == 201
        self.id: str = response.json()["id"]

    def send(self, text: str, payload: str | None = None) -> dict:
        body = {"text": text} | ({"payload": payload} if payload else {})
        response = self.client.post(f"/api/conversations/{self.id}/messages", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def say(self, text: str) -> str:
        """The bot's replies to `text`, joined."""
        return "\n".join(reply["text"] for reply in self.send(text)["replies"])

    def state(self) -> str:
        return str(self.client.get(f"/api/conversations/{self.id}").json()["state"])


@pytest.fixture(scope="module")
def client(live_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_stack.gateway_url, timeout=60, auth=WidgetTokens()) as http:
        yield http


@pytest.fixture(scope="module")
def profile(live_stack: LiveStack) -> BusinessProfile:
    return load_profile(live_stack.settings.business_file)


@pytest.fixture(scope="module")
def engine(live_stack: LiveStack):  # type: ignore[no-untyped-def]
    engine = make_engine(live_stack.database_url)
    yield engine
    engine.dispose()


def customer_messages(engine, conversation_id: str) -> list[Message]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.sender == "customer")
                .order_by(Message.id)
            )
        )


def bookable_slot(engine, profile: BusinessProfile, days_ahead: int, pick: int | None):  # type: ignore[no-untyped-def]
    """A free appointment time at least `days_ahead` days after the earliest bookable one:
    the day's `pick`-th free time, or its middle one."""
    from tandem.business.service import BusinessService

    with session_scope(engine) as session:
        service = BusinessService(session, profile)
        day = service.earliest_bookable().astimezone(profile.tz).date() + timedelta(days_ahead)
        while not service.free_slots(day):
            day += timedelta(days=1)
        free = service.free_slots(day)
        return day, free[len(free) // 2 if pick is None else pick].astimezone(profile.tz)


def next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def test_health_reports_rasa_up(client: httpx.Client) -> None:
    health = client.get("/healthz").json()
    assert {k: health[k] for k in ("status", "database", "rasa")} == {
        "status": "ok",
        "database": "ok",
        "rasa": "up",
    }
    assert health["sentiment"] in {"ok", "not_loaded"}


def test_greeting_says_it_is_the_shops_virtual_assistant(
    client: httpx.Client, profile: BusinessProfile, engine
) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(client)
    reply = chat.say("hey there")
    assert profile.business.name in reply
    assert "virtual assistant" in reply.lower()
    [message] = customer_messages(engine, chat.id)
    assert message.intent == "greet"
    assert 0 < (message.intent_confidence or 0) <= 1


def test_bot_challenge_is_answered_honestly(client: httpx.Client, profile: BusinessProfile) -> None:
    reply = Chat(client).say("am i talking to a real person or a bot?")
    assert "virtual assistant" in reply.lower()
    assert profile.business.name in reply


def test_opening_hours_on_sunday_come_from_the_business_file(
    client: httpx.Client, profile: BusinessProfile
) -> None:
    today = profile.local_now().date()
    sunday = today if today.weekday() == 6 else next_weekday(today, 6)
    hours = profile.hours_on(sunday)
    reply = Chat(client).say("are you open on sunday?")
    if hours.hours is None:
        assert "closed" in reply.lower()
    else:
        assert profile.format_time(hours.hours.opens) in reply
        assert profile.format_time(hours.hours.closes) in reply


def test_opening_hours_on_a_closed_day(client: httpx.Client, profile: BusinessProfile) -> None:
    closed = [d for d in range(7) if profile.hours.for_weekday(d) is None]
    assert closed, "the demo business has a closed day"
    weekday_name = date(2026, 1, 5 + closed[0]).strftime("%A").lower()  # 2026-01-05 is a Monday
    reply = Chat(client).say(f"r u open {weekday_name}")
    assert "closed" in reply.lower()


def test_opening_hours_on_a_holiday(client: httpx.Client, profile: BusinessProfile) -> None:
    today = profile.local_now().date()
    holiday = next(
        h for h in profile.holidays if h.hours is None and any(d >= today for d in h.dates)
    )
    reply = Chat(client).say(f"are you open on {holiday.name.lower()}?")
    assert "closed" in reply.lower()
    assert holiday.name.lower().split()[0] in reply.lower()


def test_location_contact_shipping_returns_payment_come_from_the_business_file(
    client: httpx.Client, profile: BusinessProfile
) -> None:
    assert profile.location.address in Chat(client).say("whats your address?")
    contact = Chat(client).say("how can i contact you, whats ur phone number")
    assert profile.contact.phone in contact
    shipping = Chat(client).say("how much does shipping cost and how long does it take")
    assert all(option.name in shipping for option in profile.shipping.options)
    returns = Chat(client).say("what is your return policy")
    assert str(profile.returns.window_days) in returns
    payment = Chat(client).say("can i pay with apple pay? what payment methods do u take")
    assert profile.payments.online[0] in payment


def test_product_availability_and_price_come_from_the_database(
    client: httpx.Client, profile: BusinessProfile, engine
) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        product = session.scalars(
            select(Product).where(Product.name == "Classic Denim Jacket")
        ).one()
        price = profile.money(product.price)
    reply = Chat(client).say("do you have the classic denim jacket in medium? how much is it")
    assert product.name.lower() in reply.lower()
    assert price in reply


def test_order_status_with_number_and_email(client: httpx.Client, engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        order = session.scalars(
            select(Order).where(Order.status == "shipped", Order.tracking_number.is_not(None))
        ).first()
        assert order is not None
        number, email = order.number, order.customer.email
        carrier, tracking = order.carrier or "", order.tracking_number or ""
    chat = Chat(client)
    first = chat.say(f"where is my order {number}")
    assert "mail" in first.lower()  # it asks for the e-mail address
    wrong = chat.say("nobody@example.com")
    assert tracking not in wrong  # nothing is revealed to a wrong e-mail
    chat.say(number)  # the form asks again, from the order number
    answer = chat.say(email.upper())
    assert tracking in answer
    assert carrier.lower() in answer.lower()
    assert client.get(f"/api/conversations/{chat.id}").json()["customer_verified"] is True
    first_message = customer_messages(engine, chat.id)[0]
    assert first_message.intent == "order_status"
    assert {"entity": "order_number", "value": number} in [
        {"entity": e["entity"], "value": e["value"]} for e in first_message.entities or []
    ]


def test_the_order_number_typed_again_at_the_email_question_twice_hands_over(
    client: httpx.Client, engine
) -> None:  # type: ignore[no-untyped-def]
    # Each reply is worded differently and the second is no question: only the form's own
    # typed signal (handoff.signals.RetrySignal) shows the policy that it is going round.
    with session_scope(engine) as session:
        number = session.scalars(select(Order.number).where(Order.status == "shipped")).first()
    assert number is not None
    chat = Chat(client)
    assert "mail" in chat.say(f"where is my order {number}").lower()
    chat.say(number)
    assert chat.state() == "bot"  # one rejected answer is no loop yet
    chat.say(number)
    assert chat.state() in {"queued", "offline"}
    [event] = events(engine, chat.id, "state_changed")
    assert event.from_state == "bot" and "going round" in (event.reason or "")


def test_booking_a_styling_appointment_is_stored(
    client: httpx.Client, profile: BusinessProfile, engine
) -> None:  # type: ignore[no-untyped-def]
    day, slot = bookable_slot(engine, profile, days_ahead=2, pick=None)
    chat = Chat(client)
    chat.say("i'd like to book a styling appointment")
    chat.say(f"{day:%B} {day.day}")
    chat.say(slot.strftime("%I:%M %p").lstrip("0"))
    chat.say("Jane Tester")
    confirmation = chat.say("312-555-0199")
    assert "BK-" in confirmation
    reference = confirmation[confirmation.index("BK-") :].split()[0].strip(".,!)")
    with session_scope(engine) as session:
        booking = session.scalars(select(Booking).where(Booking.ref == reference)).one()
        assert booking.customer_name == "Jane Tester"
        assert booking.starts_at == slot


def test_fallback_offers_a_person(client: httpx.Client, engine) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(client)
    result = chat.send("blorf zzyx quantum llama sprocket")
    payloads = [b["payload"] for r in result["replies"] for b in r["buttons"]]
    assert "/request_human" in payloads
    [message] = customer_messages(engine, chat.id)
    assert message.intent in {"nlu_fallback", "out_of_scope"}


def test_request_for_a_person_hands_off_and_silences_the_bot(client: httpx.Client, engine) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(client)
    reply = chat.say("i want to talk to a real person please")
    assert reply  # the customer is told what happens next
    assert chat.state() == "queued"
    [event] = events(engine, chat.id, "state_changed")
    assert (event.from_state, event.to_state, event.reason) == (
        "bot",
        "queued",
        "asked for a person",
    )
    held = chat.send("hello? anyone there?")
    # The bot is silent; the customer is told once that what they type is kept.
    assert [r["kind"] for r in held["replies"]] == ["queued_ack"]
    assert chat.send("still there?")["replies"] == []
    assert held["message"]["status"] == "held"


def test_button_payload_goes_to_rasa_and_the_title_is_stored(
    client: httpx.Client,
) -> None:
    chat = Chat(client)
    result = chat.send("Talk to a person", payload="/request_human")
    assert result["message"]["text"] == "Talk to a person"
    assert chat.state() == "queued"


def test_websocket_conversation(
    live_stack: LiveStack, client: httpx.Client, profile: BusinessProfile
) -> None:
    chat = Chat(client)
    url = live_stack.gateway_url.replace("http", "ws") + f"/ws/chat/{chat.id}"
    with connect(url, open_timeout=10) as socket:
        socket.send(json.dumps(client.auth.auth_frame(chat.id)))  # type: ignore[attr-defined]
        assert json.loads(socket.recv(timeout=10)) == {"type": "ready"}
        socket.send(
            json.dumps(
                {"type": "message", "text": "where are you located?", "client_message_id": "ws-1"}
            )
        )
        frames = []
        while not any(f["type"] == "message" and f["message"]["sender"] == "bot" for f in frames):
            frames.append(json.loads(socket.recv(timeout=60)))
    assert frames[0]["type"] == "message" and frames[0]["message"]["sender"] == "customer"
    assert {"type": "typing", "sender": "bot", "on": True} in frames
    bot_reply = next(
        f["message"] for f in frames if f["type"] == "message" and f["message"]["sender"] == "bot"
    )
    assert profile.location.address in bot_reply["text"]
    history = client.get(f"/api/conversations/{chat.id}/messages").json()["messages"]
    assert [m["sender"] for m in history][:2] == ["customer", "bot"]
