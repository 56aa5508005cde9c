"""The custom actions, run as Rasa runs them, against a seeded SQLite database."""

from __future__ import annotations

from typing import Any

import pytest
from conftest_business import NOW, actions_env, business_engine, profile
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from actions.bookings import (
    ActionBookAppointment,
    ActionCancelAppointment,
    ValidateBookingForm,
    ValidateCancelBookingForm,
    ValidateRescheduleForm,
    parse_time,
    part_of_day,
)
from actions.handoff import ActionComplaint, ActionRequestHuman
from actions.help import (
    ActionAccessibility,
    ActionAccountHelp,
    ActionChangeOrder,
    ActionFeedback,
    ActionGiftCards,
    ActionInvoice,
    ActionNewsletter,
    ActionPaymentProblem,
    ActionPriceMatch,
    ActionPromotions,
    ActionRefundStatus,
    ActionRestock,
    ActionSizeGuide,
    ActionWholesale,
)
from actions.info import ActionBotChallenge, ActionGreet, ActionOpeningHours, ActionPaymentMethods
from actions.orders import (
    ActionCancelOrder,
    ActionOrderStatus,
    ActionStartReturn,
    ValidateCancelOrderForm,
    ValidateOrderStatusForm,
    ValidateReturnForm,
    order_lookups,
)
from actions.products import ActionProductInfo
from handoff.identity import rasa_identity_metadata
from tandem.abuse.service import OrderLookupLimit
from tandem.business.models import Booking, Order, Product, ReturnRequest
from tandem.business.profile import BusinessProfile
from tandem.config import Settings, get_settings

__all__ = ["actions_env", "business_engine", "profile"]  # fixtures used below
pytestmark = pytest.mark.usefixtures("actions_env")
FORMS = {
    "order_status_form": ["order_number", "order_email"],
    "return_form": ["order_number", "order_email", "return_type"],
    "cancel_order_form": ["order_number", "order_email", "cancel_confirmed"],
    "booking_form": ["appointment_date", "appointment_time", "customer_name", "customer_phone"],
    "reschedule_form": ["booking_ref", "appointment_date", "appointment_time"],
    "cancel_booking_form": ["booking_ref"],
}
DOMAIN: dict[str, Any] = {
    "forms": {name: {"required_slots": slots} for name, slots in FORMS.items()},
    "slots": {},
}


def make_tracker(
    text: str = "",
    *,
    slots: dict[str, Any] | None = None,
    candidates: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    form: str | None = None,
    requested: str | None = None,
    history: list[dict[str, Any]] | None = None,
    sender: str = "test",
    intent: str = "inform",
) -> Tracker:
    """A tracker as Rasa sends it: candidates are the SlotSets the form just extracted."""
    candidates = candidates or {}
    all_slots = {**(slots or {}), **candidates, "requested_slot": requested}
    events: list[dict[str, Any]] = []
    if form:
        events.append({"event": "active_loop", "name": form})
    events += history or []
    events.append({"event": "user", "text": text})
    events += [{"event": "slot", "name": k, "value": v} for k, v in candidates.items()]
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": all_slots,
            "latest_message": {
                "text": text,
                "intent": {"name": intent},
                "entities": entities or [],
                "metadata": metadata or {},
            },
            "events": events,
            "active_loop": {"name": form} if form else {},
        }
    )


async def run(action: Action, tracker: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def texts(messages: list[dict[str, Any]]) -> str:
    return " | ".join(m["text"] for m in messages if m.get("text"))


def payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["custom"]["tandem"] for m in messages if m.get("custom")]


def retry_events(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rasa stores the dispatcher's extra keys as BotUttered metadata."""
    return [
        {"event": "bot", "text": m["text"], "metadata": {"tandem_retry": m["tandem_retry"]}}
        for m in messages
        if m.get("tandem_retry")
    ]


# ------------------------------------------------------------------------- info


async def test_greeting_and_bot_challenge_are_honest() -> None:
    for action in (ActionGreet(), ActionBotChallenge()):
        messages, _ = await run(action, make_tracker("hi"))
        said = texts(messages)
        assert "Marigold & Moss" in said and "virtual assistant" in said
        assert "person" in said


async def test_opening_hours_for_a_holiday_a_weekday_and_the_week() -> None:
    messages, _ = await run(ActionOpeningHours(), make_tracker("are you open on christmas?"))
    assert texts(messages) == "We're closed on Friday, December 25 for Christmas Day."
    messages, _ = await run(ActionOpeningHours(), make_tracker("what about sunday"))
    assert texts(messages) == "On Sunday, November 22 we're open 11 AM to 5 PM."
    messages, _ = await run(ActionOpeningHours(), make_tracker("opening hours?"))
    said = texts(messages)
    assert "Monday: closed" in said and "Tuesday–Wednesday: 10 AM to 7 PM" in said
    assert "We open again today at 10 AM" in said  # 9 AM in Chicago
    assert "Thanksgiving" in said  # special hours within two weeks


async def test_payment_methods_come_from_the_business_file() -> None:
    messages, _ = await run(ActionPaymentMethods(), make_tracker("do you take paypal"))
    assert "PayPal" in texts(messages) and "cash" in texts(messages)


async def test_handoff_payloads() -> None:
    from handoff.signals import HandoffSignal

    messages, _ = await run(ActionRequestHuman(), make_tracker("a human please"))
    assert messages[0].get("text") is None  # the gateway shows the payload's text
    (payload,) = payloads(messages)
    assert payload["type"] == "handoff" and payload["reason"] == "request_human"
    # No availability words: the gateway's desk decides that once (closed at 9 AM here).
    assert "10 AM" not in payload["text"] and "closed" not in payload["text"]
    assert HandoffSignal.model_validate(payload).text == payload["text"]
    messages, _ = await run(ActionComplaint(), make_tracker("this is terrible"))
    (payload,) = payloads(messages)
    assert payload["reason"] == "complaint" and "sorry" in payload["text"]


# ----------------------------------------------------------------------- orders


async def test_order_status_verified_by_email_identifies_customer() -> None:
    form = "order_status_form"
    tracker = make_tracker(
        "10003 marcus.reyes@EXAMPLE.com",
        candidates={"order_number": "10003", "order_email": "marcus.reyes@EXAMPLE.com"},
        form=form,
        requested="order_number",
    )
    messages, slots = await run(ValidateOrderStatusForm(), tracker)
    assert messages == []
    assert slots["order_number"] == "10003"
    assert slots["order_email"] == "marcus.reyes@example.com"
    messages, slots = await run(
        ActionOrderStatus(),
        make_tracker(
            "", slots={"order_number": "10003", "order_email": "marcus.reyes@example.com"}
        ),
    )
    said = texts(messages)
    assert "Order #10003 has shipped." in said
    assert "local courier" in said and "tracking number MMC-" in said
    assert "Expected delivery:" in said
    (payload,) = payloads(messages)
    assert payload == {"type": "identified", "customer_id": 2, "via": "order_lookup"}
    assert slots == {"verified_customer_id": 2.0, "order_number": None, "order_email": None}


async def test_order_verification_mismatch_and_lockout() -> None:
    form, history = "order_status_form", []
    for attempt in range(1, 3):
        tracker = make_tracker(
            "priya.shah@example.com",
            slots={"order_number": "10003"},
            candidates={"order_email": "priya.shah@example.com"},
            form=form,
            requested="order_email",
            history=history,
        )
        messages, slots = await run(ValidateOrderStatusForm(), tracker)
        assert slots["order_number"] is None and slots["order_email"] is None
        history += retry_events(messages)
        if attempt < 2:
            assert texts(messages).startswith("Sorry, that order number and e-mail address")
            assert "requested_slot" not in slots or slots["requested_slot"] == "order_number"
    assert "keep your account safe" in texts(messages)
    assert messages[0]["buttons"][0]["payload"] == "/request_human"
    assert slots["requested_slot"] is None  # the form stops


async def test_unknown_order_and_wrong_email_get_the_same_reply() -> None:
    # The number step no longer says whether an order exists (order numbers are sequential).
    tracker = make_tracker(
        "99999", candidates={"order_number": "99999"}, form="order_status_form",
        requested="order_number",
    )  # fmt: skip
    messages, slots = await run(ValidateOrderStatusForm(), tracker)
    assert messages == [] and slots["order_number"] == "99999"
    replies = []
    for number in ("99999", "10003"):  # unknown; known but not this e-mail's
        tracker = make_tracker(
            "someone@example.com",
            slots={"order_number": number},
            candidates={"order_email": "someone@example.com"},
            form="order_status_form",
            requested="order_email",
            sender=f"probe-{number}",
        )
        messages, slots = await run(ValidateOrderStatusForm(), tracker)
        replies.append((texts(messages), slots))
    assert replies[0] == replies[1]
    assert replies[0][0].startswith("Sorry, that order number and e-mail address")


async def test_failed_order_checks_are_counted_per_client_across_conversations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = OrderLookupLimit(Settings(limit_order_lookups_per_hour=4))
    monkeypatch.setattr("actions.orders.order_lookups", lambda: limit)
    client = {"client": "tag-of-one-address"}

    async def check(conversation: str, number: str, email: str) -> str:
        tracker = make_tracker(
            email,
            slots={"order_number": number},
            candidates={"order_email": email},
            form="order_status_form",
            requested="order_email",
            metadata=client,
            sender=conversation,
        )
        messages, _ = await run(ValidateOrderStatusForm(), tracker)
        return texts(messages)

    # A new conversation used to start over; four failures spread over two are the limit.
    for conversation in ("c1", "c1", "c2", "c2"):
        await check(conversation, "10003", "guess@example.com")
    # Now even the right e-mail, in a fresh conversation, is not checked for this client.
    assert "keep your account safe" in await check("c3", "10003", "marcus.reyes@example.com")
    # Another client is not affected.
    client["client"] = "tag-of-another-address"
    assert await check("c4", "10003", "marcus.reyes@example.com") == ""


@pytest.fixture(autouse=True)
def _fresh_order_lookup_counts() -> None:
    # Every tracker here is one client; each test starts with no failed checks counted.
    order_lookups.cache_clear()


async def test_invalid_order_number_retries_then_offers_a_person() -> None:
    history: list[dict[str, Any]] = []
    for attempt in range(1, 3):
        tracker = make_tracker(
            "123",
            candidates={"order_number": "123"},
            form="order_status_form",
            requested="order_number",
            history=history,
        )
        messages, slots = await run(ValidateOrderStatusForm(), tracker)
        assert slots["order_number"] is None
        assert "five digits" in texts(messages)
        history += retry_events(messages)
        if attempt == 1:
            assert not messages[0]["buttons"] and "requested_slot" not in slots
    # the second failure offers other ways instead of a third identical question
    assert "confirmation e-mail" in texts(messages)
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/request_human", "/order_status"]
    assert slots["requested_slot"] is None


async def test_verified_customer_skips_email_and_gets_latest_orders() -> None:
    # Signed by the gateway for this conversation (the tracker's sender id is "test").
    metadata = rasa_identity_metadata(get_settings().identity_secret, "test", 1, True)
    tracker = make_tracker("where is my order", metadata=metadata, form="order_status_form")
    validator = ValidateOrderStatusForm()
    assert await validator.required_slots([], CollectingDispatcher(), tracker, DOMAIN) == []
    messages, _ = await run(validator, tracker)
    messages, _ = await run(ActionOrderStatus(), make_tracker("", metadata=metadata))
    said = texts(messages)
    assert said.startswith("Here are your latest orders:")
    assert "#10001" in said and "#10002" in said
    # without the gateway's signature, `verified: true` is not trusted
    unverified = make_tracker("", metadata={"customer_id": 1, "verified": True})
    assert await ValidateCancelOrderForm().required_slots(
        [], CollectingDispatcher(), unverified, DOMAIN
    ) == ["order_number", "order_email", "cancel_confirmed"]


@pytest.mark.parametrize(
    ("opener", "number"),
    [
        ("pls cancel order 10043 before it ships!! ordered the wrong sizes on everything", "10043"),
        ("cancel my order no. 10043 please, the sizes are all wrong", "10043"),
        ("hi can you cancel #10043, wrong sizes", "10043"),
        ("hey whats the status of 10043", "10043"),
        ("can you check on 10043 i want to cancel it", "10043"),
        ("cancel my order, I live at 60614 and it won't get here in time", None),
        ("i need to cancel an order", None),
    ],
)
async def test_the_order_named_in_the_request_that_starts_the_form_is_taken(
    business_engine: Engine, opener: str, number: str | None
) -> None:
    """The entity extractor missed "10043" in a long first message and the form asked for
    the number the customer had just given."""
    form = make_tracker(opener, form="cancel_order_form")
    _, slots = await run(ValidateCancelOrderForm(), form)
    assert slots.get("order_number") == number
    # Once the form asks for something, a number in passing is the form's to judge.
    asking = make_tracker(opener, form="cancel_order_form", requested="order_email")
    _, slots = await run(ValidateCancelOrderForm(), asking)
    assert "order_number" not in slots


@pytest.mark.parametrize(
    ("opener", "kind"),
    [
        ("hi can i swap my jeans for a size up", "exchange"),
        ("i'd like to exchange the wrap dress", "exchange"),
        ("i want my money back for the boots", "return"),
        ("i want to return a dress", None),  # "return" alone: people say it of exchanges
    ],
)
async def test_an_exchange_or_refund_named_in_the_opening_request_is_not_asked_again(
    business_engine: Engine, opener: str, kind: str | None
) -> None:
    _, slots = await run(ValidateReturnForm(), make_tracker(opener, form="return_form"))
    assert slots.get("return_type") == kind


async def test_cancel_order_flow(business_engine: Engine) -> None:
    form = "cancel_order_form"
    tracker = make_tracker(
        "diego",
        slots={"order_number": "10007"},
        candidates={"order_email": "diego.alvarez@example.com"},
        form=form,
        requested="order_email",
    )
    messages, slots = await run(ValidateCancelOrderForm(), tracker)
    assert texts(messages) == "Order #10007 is already cancelled."
    assert slots["requested_slot"] is None
    # a delivered order: explains and offers a return instead
    tracker = make_tracker(
        "x",
        slots={"order_number": "10005"},
        candidates={"order_email": "olivia.bennett@example.com"},
        form=form,
        requested="order_email",
    )
    messages, slots = await run(ValidateCancelOrderForm(), tracker)
    assert "can't be cancelled" in texts(messages) and "return" in texts(messages)
    assert slots["requested_slot"] is None
    # a pending order: offered, confirmed, cancelled
    tracker = make_tracker(
        "x",
        slots={"order_number": "10001"},
        candidates={"order_email": "olivia.bennett@example.com"},
        form=form,
        requested="order_email",
    )
    messages, slots = await run(ValidateCancelOrderForm(), tracker)
    assert "hasn't shipped yet, so I can cancel it" in texts(messages)
    assert "requested_slot" not in slots  # Rasa asks cancel_confirmed next
    filled = {"order_number": "10001", "order_email": "olivia.bennett@example.com"}
    messages, _ = await run(
        ActionCancelOrder(), make_tracker("no", slots={**filled, "cancel_confirmed": False})
    )
    assert "I've left order #10001 as it is" in texts(messages)
    messages, slots = await run(
        ActionCancelOrder(), make_tracker("yes", slots={**filled, "cancel_confirmed": True})
    )
    assert texts(messages).startswith("Done: order #10001 is cancelled.")
    assert slots["cancel_confirmed"] is None
    with Session(business_engine) as session:
        order = session.scalar(select(Order).where(Order.number == "10001"))
        assert order is not None and order.status == "cancelled"


async def test_return_flow(business_engine: Engine) -> None:
    form = "return_form"
    tracker = make_tracker(
        "x",
        slots={"order_number": "10009"},
        candidates={"order_email": "emily.chen@example.com"},
        form=form,
        requested="order_email",
    )
    messages, slots = await run(ValidateReturnForm(), tracker)
    assert "outside our return window" in texts(messages)
    assert slots["requested_slot"] is None
    tracker = make_tracker(
        "x",
        slots={"order_number": "10005"},
        candidates={"order_email": "olivia.bennett@example.com"},
        form=form,
        requested="order_email",
    )
    messages, slots = await run(ValidateReturnForm(), tracker)
    assert "can still be returned or exchanged until" in texts(messages)
    assert "requested_slot" not in slots  # Rasa asks return_type next
    tracker = make_tracker(
        "I'd like a different size",
        slots={"order_number": "10005", "order_email": "olivia.bennett@example.com"},
        candidates={"return_type": "I'd like a different size"},
        form=form,
        requested="return_type",
    )
    _, slots = await run(ValidateReturnForm(), tracker)
    assert slots["return_type"] == "exchange"
    done = {
        "order_number": "10005",
        "order_email": "olivia.bennett@example.com",
        "return_type": "exchange",
    }
    messages, slots = await run(ActionStartReturn(), make_tracker("", slots=done))
    assert "exchange request for order #10005" in texts(messages)
    assert "confirm the size or colour" in texts(messages)  # exchange steps from the policy
    assert payloads(messages)[0]["type"] == "identified"
    with Session(business_engine) as session:
        assert session.scalar(select(ReturnRequest).where(ReturnRequest.kind == "exchange"))
    # Asked again, the order has an open request: the validator says so on verifying, and
    # the form's end says nothing more (it said the refusal twice).
    messages, _ = await run(ActionStartReturn(), make_tracker("", slots=done))
    assert texts(messages) == ""


# --------------------------------------------------------------------- products


async def test_product_info_with_size_entity() -> None:
    entities = [
        {"entity": "product", "value": "linen shirt"},
        {"entity": "size", "value": "extra small"},
    ]
    messages, slots = await run(
        ActionProductInfo(), make_tracker("linen shirt in extra small?", entities=entities)
    )
    said = texts(messages)
    assert said.startswith(
        "Linen Button-Down Shirt costs $78.00 and comes in White, Sage or Sky Blue."
    )
    assert "sold out in size XS" in said
    assert slots == {"product": "Linen Button-Down Shirt", "size": "XS"}  # context for later
    messages, _ = await run(
        ActionProductInfo(),
        make_tracker("leather bag", entities=[{"entity": "product", "value": "leather bag"}]),
    )
    assert "sold out in every size" in texts(messages)
    messages, _ = await run(
        ActionProductInfo(),
        make_tracker("x", entities=[{"entity": "product", "value": "garden hose"}]),
    )
    assert 'couldn\'t find a product called "garden hose"' in texts(messages)


async def test_follow_ups_are_about_the_same_product() -> None:
    """ "how much is it", "in a medium?", "and the black one?" after a product answer."""
    context = {"product": "Classic Denim Jacket", "size": None}
    messages, slots = await run(ActionProductInfo(), make_tracker("how much is it", slots=context))
    assert texts(messages).startswith("Classic Denim Jacket costs $128.00")
    assert slots["product"] == "Classic Denim Jacket"
    messages, slots = await run(ActionProductInfo(), make_tracker("in a medium?", slots=context))
    assert "Classic Denim Jacket is in stock in size M" in texts(messages)
    assert slots["size"] == "M"
    carried = {"product": "Classic Denim Jacket", "size": "M"}
    messages, _ = await run(ActionProductInfo(), make_tracker("and the black one?", slots=carried))
    said = texts(messages)
    assert said.startswith("Yes, Classic Denim Jacket comes in Black") and "size M" in said
    messages, _ = await run(ActionProductInfo(), make_tracker("in red?", slots=carried))
    assert "doesn't come in red" in texts(messages)


async def test_search_by_category_size_and_price_lists_every_match_with_stock(
    business_engine: Engine,
) -> None:
    entities = [{"entity": "product", "value": "dresses"}, {"entity": "size", "value": "M"}]
    text = "any dresses in M under $150"
    messages, _ = await run(ActionProductInfo(), make_tracker(text, entities=entities))
    said = texts(messages)
    with Session(business_engine) as session:
        dresses = session.scalars(
            select(Product).where(Product.category == "Dresses", Product.price <= 150)
        ).all()
        assert len(dresses) >= 2
        for dress in dresses:
            variant = next(v for v in dress.variants if v.size == "M")
            stock = f"{variant.stock} in M" if variant.stock else "sold out in M"
            assert f"{dress.name}, ${dress.price:.2f}: {stock}" in said


async def test_a_one_size_product_does_not_list_sizes() -> None:
    entities = [{"entity": "product", "value": "chunky knit beanie"}]
    messages, _ = await run(ActionProductInfo(), make_tracker("beanie?", entities=entities))
    said = texts(messages)
    assert "It's in stock." in said and "sizes One Size" not in said


# --------------------------------------------------------------------- bookings


def test_parse_time() -> None:
    assert parse_time("2pm") == parse_time("14:00") == parse_time("at 2") is not None
    assert str(parse_time("2.30 p.m.")) == "14:30:00"
    assert str(parse_time("noon")) == "12:00:00"
    assert parse_time("dec 24") is None and parse_time("12/24") is None
    # times said in words, as people type them
    assert str(parse_time("half past two")) == "14:30:00"
    assert str(parse_time("in the afternoon, 3 o clock maybe")) == "15:00:00"
    assert str(parse_time("a quarter to four")) == "15:45:00"
    assert str(parse_time("ten thirty")) == "10:30:00"
    assert str(parse_time("at two")) == "14:00:00"
    assert parse_time("3 people") is None and parse_time("two of us") is None
    assert str(parse_time("16h")) == "16:00:00" and str(parse_time("16h30")) == "16:30:00"
    assert str(parse_time("any time after 2")) == "14:00:00"
    assert parse_time("4 hours") is None
    assert str(parse_time("half 3")) == "15:30:00"


def test_part_of_day_words() -> None:
    assert part_of_day("saturday afternoon")[0] == "in the afternoon"
    assert part_of_day("tomorrow morning please")[0] == "in the morning"
    assert part_of_day("tonight")[0] == "in the evening"
    assert part_of_day("friday at 3") is None


async def test_a_part_of_the_day_narrows_the_free_times(business_engine: Engine) -> None:
    validator = ValidateBookingForm()
    messages, slots = await run(
        validator,
        make_tracker(
            "friday afternoon",
            candidates={"appointment_date": "friday afternoon"},
            form="booking_form",
            requested="appointment_date",
        ),
    )
    assert slots["appointment_date"] == "2026-11-20" and slots.get("appointment_time") is None
    # BK-2043 takes one of two stylists at 2 PM, so 2 PM is still free; 12 to 4:30 PM
    assert texts(messages) == (
        "On Friday, November 20 in the afternoon I have 12 PM to 4:30 PM free. "
        "Which time would you like?"
    )
    messages, slots = await run(
        validator,
        make_tracker(
            "in the evening",
            slots={"appointment_date": "2026-11-20"},
            candidates={"appointment_time": "in the evening"},
            form="booking_form",
            requested="appointment_time",
        ),
    )
    assert slots["appointment_time"] is None
    assert texts(messages).startswith("On Friday, November 20 in the evening I have ")
    assert "didn't catch" not in texts(messages)


async def test_booking_form_and_action(business_engine: Engine) -> None:
    form = "booking_form"
    validator = ValidateBookingForm()
    messages, slots = await run(
        validator,
        make_tracker(
            "monday",
            candidates={"appointment_date": "monday"},
            form=form,
            requested="appointment_date",
        ),
    )
    assert texts(messages) == "We're closed on Monday, November 23. Which other day would suit you?"
    assert slots["appointment_date"] is None
    messages, slots = await run(
        validator,
        make_tracker(
            "friday",
            candidates={"appointment_date": "friday"},
            form=form,
            requested="appointment_date",
        ),
    )
    assert slots["appointment_date"] == "2026-11-20"
    assert texts(messages) == "On Friday, November 20 I have free times from 10 AM to 7 PM."
    # BK-2043 is seeded at 2 PM on Friday; fill the second stylist too
    with Session(business_engine) as session, session.begin():
        session.add(
            Booking(
                ref="BK-9999",
                customer_name="X",
                phone="3125550100",
                starts_at=NOW.replace(day=20, hour=20),
                duration_minutes=60,
            )
        )
    messages, slots = await run(
        validator,
        make_tracker(
            "2pm",
            slots={"appointment_date": "2026-11-20"},
            candidates={"appointment_time": "2pm"},
            form=form,
            requested="appointment_time",
        ),
    )
    assert texts(messages).startswith("Sorry, 2 PM on Friday, November 20 is taken.")
    assert slots["appointment_time"] is None
    messages, slots = await run(
        validator,
        make_tracker(
            "3pm",
            slots={"appointment_date": "2026-11-20"},
            candidates={"appointment_time": "3pm"},
            form=form,
            requested="appointment_time",
        ),
    )
    assert slots["appointment_time"] == "15:00" and messages == []
    for slot, value, ok in [
        ("customer_name", "my name is jane doe", "Jane Doe"),
        ("customer_name", "J", None),
        ("customer_phone", "(312) 555 0199", "3125550199"),
        ("customer_phone", "555", None),
    ]:
        _, slots = await run(
            validator, make_tracker(value, candidates={slot: value}, form=form, requested=slot)
        )
        assert slots[slot] == ok
    filled = {
        "appointment_date": "2026-11-20",
        "appointment_time": "15:00",
        "customer_name": "Jane Doe",
        "customer_phone": "3125550199",
    }
    messages, slots = await run(ActionBookAppointment(), make_tracker("", slots=filled))
    said = texts(messages)
    assert "personal styling session on Friday, November 20 at 3 PM (60 minutes)" in said
    assert all(value is None for value in slots.values())
    ref = said.split("reference is ")[1].split(".")[0]
    messages, slots = await run(
        ValidateCancelBookingForm(),
        make_tracker(
            ref.lower(),
            candidates={"booking_ref": ref.lower()},
            form="cancel_booking_form",
            requested="booking_ref",
        ),
    )
    assert slots["booking_ref"] == ref
    messages, _ = await run(ActionCancelAppointment(), make_tracker("", slots={"booking_ref": ref}))
    assert texts(messages).startswith(f"Booking {ref} on Friday, November 20 at 3 PM is cancelled.")


async def test_reschedule_validates_reference() -> None:
    messages, slots = await run(
        ValidateRescheduleForm(),
        make_tracker(
            "BK-2053",
            candidates={"booking_ref": "BK-2053"},
            form="reschedule_form",
            requested="booking_ref",
        ),
    )
    assert texts(messages) == "Booking BK-2053 has already been cancelled."
    assert slots["booking_ref"] is None
    messages, slots = await run(
        ValidateRescheduleForm(),
        make_tracker(
            "bk 2048",
            candidates={"booking_ref": "bk 2048"},
            form="reschedule_form",
            requested="booking_ref",
        ),
    )
    assert slots["booking_ref"] == "BK-2048"
    assert texts(messages).startswith("Booking BK-2048 is on ")


# ----------------------------------------------------------- corrections mid-form


async def test_a_corrected_order_number_at_the_email_question_is_taken() -> None:
    """Asked for the e-mail, the customer says "no, 10003": a new number, not a bad e-mail."""
    tracker = make_tracker(
        "no, 10003",
        slots={"order_number": "10001"},
        candidates={"order_email": "no, 10003"},
        form="order_status_form",
        requested="order_email",
    )
    messages, slots = await run(ValidateOrderStatusForm(), tracker)
    assert slots == {"order_number": "10003", "order_email": None}
    assert not messages  # no "that doesn't look like an e-mail address"


def at_the_email_question(given: str, history: list[dict[str, Any]]) -> Tracker:
    """The order form asked for the e-mail of order 10001; the customer typed `given`."""
    return make_tracker(
        given,
        slots={"order_number": "10001"},
        candidates={"order_number": "10001", "order_email": given},
        form="order_status_form",
        requested="order_email",
        history=history,
    )


@pytest.mark.parametrize(
    ("form", "slot", "said", "reason"),
    [
        ("order_status_form", "order_number", "i dont have the order number, deleted the email",
         "no_order_number"),
        ("cancel_order_form", "order_number", "can you look it up by my email instead?",
         "no_order_number"),
        ("reschedule_form", "booking_ref", "I don't have a reference, I booked over the phone",
         "no_booking_ref"),
        ("cancel_booking_form", "booking_ref", "no idea, never got a text", "no_booking_ref"),
    ],
)
async def test_a_customer_without_the_number_goes_to_a_person_at_once(
    form: str, slot: str, said: str, reason: str
) -> None:
    """Asking again for a number the customer says they do not have traps them: the form
    stops and hands over (only staff can look it up another way), on the first try."""
    validations = {
        "order_status_form": ValidateOrderStatusForm,
        "cancel_order_form": ValidateCancelOrderForm,
        "reschedule_form": ValidateRescheduleForm,
        "cancel_booking_form": ValidateCancelBookingForm,
    }
    tracker = make_tracker(said, candidates={slot: said}, form=form, requested=slot)
    messages, slots = await run(validations[form](), tracker)
    (payload,) = payloads(messages)
    assert payload["type"] == "handoff" and payload["reason"] == reason
    assert "person from our team" in payload["text"] and "?" not in payload["text"]
    assert slots[slot] is None and slots["requested_slot"] is None
    # A wrong number is still a retry, not a handoff.
    tracker = make_tracker("1004", candidates={slot: "1004"}, form=form, requested=slot)
    messages, slots = await run(validations[form](), tracker)
    assert [p["type"] for p in payloads(messages)] == ["retry"]
    assert "requested_slot" not in slots


async def test_the_same_number_again_at_the_email_question_says_what_is_missing() -> None:
    """Read off a receipt twice, "10001" where the e-mail was asked: the bot says it has the
    number and needs the e-mail; a second time it offers a person, not a third ask."""
    before = [{"event": "slot", "name": "order_number", "value": "10001"}]
    messages, slots = await run(ValidateOrderStatusForm(), at_the_email_question("10001", before))
    assert slots["order_email"] is None
    # A statement: the form's own question follows it (one question per turn).
    assert texts(messages).startswith("I have order number 10001 already. To check it I also")
    assert "?" not in texts(messages)
    assert not any(m.get("buttons") for m in messages)
    retry = {"tandem_retry": messages[0]["tandem_retry"]}
    retried = [*before, {"event": "bot", "text": texts(messages), "metadata": retry}]
    messages, _ = await run(ValidateOrderStatusForm(), at_the_email_question("10001", retried))
    assert "Rather than ask a third time" in texts(messages)
    assert any(b["payload"] == "/request_human" for m in messages for b in m.get("buttons", []))
    # With the e-mail itself (not the number again) the pair is checked as usual.
    messages, _ = await run(
        ValidateOrderStatusForm(), at_the_email_question("nobody@example.com", before)
    )
    assert "I have order number" not in texts(messages)


# ------------------------------------------------------ answers from business.yml


async def test_promotions_say_no_sale_before_it_starts_and_list_it_during(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import actions.common

    messages, _ = await run(ActionPromotions(), make_tracker("is there a sale on right now?"))
    assert texts(messages).startswith("There's no sale on right now.")  # NOW is before it
    during = NOW.replace(month=12, day=2)
    monkeypatch.setattr(actions.common, "clock", lambda: during)
    messages, _ = await run(ActionPromotions(), make_tracker("any sales?"))
    assert "Winter Knit Sale" in texts(messages) and "January 4" in texts(messages)
    messages, _ = await run(ActionPromotions(), make_tracker("my promo code says expired"))
    assert texts(messages).startswith("If a code is refused")
    # The customer may need a person to apply it: the button is there; a sale question
    # gets none.
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/request_human"]
    messages, _ = await run(ActionPromotions(), make_tracker("any sales?"))
    assert not messages[0].get("buttons")


async def test_gift_cards_and_store_credit_are_not_payment_methods() -> None:
    messages, _ = await run(ActionGiftCards(), make_tracker("do you sell gift cards"))
    assert "never expire" in texts(messages) and "Visa" not in texts(messages)
    messages, _ = await run(ActionGiftCards(), make_tracker("how do i use store credit"))
    assert texts(messages).startswith("Store credit")


@pytest.mark.parametrize(
    ("action", "text", "expected"),
    [
        (ActionPriceMatch(), "do you price match", "identical item"),
        (ActionSizeGuide(), "do your clothes run small", "true to size"),
        (ActionAccountHelp(), "i forgot my password", "Forgot password?"),
        (ActionInvoice(), "i need an invoice", "PDF invoice"),
        (ActionRefundStatus(), "where is my refund", "5 business days"),
        (ActionFeedback(), "i want to leave a review", "review"),
        (ActionNewsletter(), "unsubscribe me", "Unsubscribe"),
        (ActionNewsletter(), "sign me up for the newsletter", "10% off"),
    ],
)
async def test_shopper_questions_are_answered_from_the_business_file(
    action: Action, text: str, expected: str
) -> None:
    messages, _ = await run(action, make_tracker(text))
    assert expected in texts(messages)


@pytest.mark.parametrize(
    ("action", "reason", "expected"),
    [
        (ActionChangeOrder(), "change_order", "before it ships"),
        (ActionPaymentProblem(), "payment_problem", "pending authorisation"),
        (ActionWholesale(), "wholesale", "quote"),
        (ActionAccessibility(), "accessibility", "got in your way"),
    ],
)
async def test_what_only_a_person_can_do_is_handed_over_with_its_reason(
    action: Action, reason: str, expected: str
) -> None:
    messages, _ = await run(action, make_tracker("help"))
    (payload,) = payloads(messages)
    assert payload["type"] == "handoff" and payload["reason"] == reason
    assert expected in payload["text"]
    # No availability words: the gateway's desk decides that once (closed at 9 AM here).
    assert "10 AM" not in payload["text"]


async def test_restock_names_the_sold_out_sizes() -> None:
    entities = [{"entity": "product", "value": "Linen Button-Down Shirt"}]
    messages, _ = await run(ActionRestock(), make_tracker("back in stock?", entities=entities))
    said = texts(messages)
    assert "sold out in XS" in said and "Notify me" in said


async def test_a_missing_section_offers_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    import actions.help

    bare = profile_without("price_match")
    monkeypatch.setattr(actions.help, "profile", lambda: bare)
    messages, _ = await run(ActionPriceMatch(), make_tracker("do you price match"))
    assert "don't have the details" in texts(messages)
    assert messages[0]["buttons"][0]["payload"] == "/request_human"


def profile_without(section: str) -> BusinessProfile:
    from tandem.business.profile import get_profile

    return get_profile().model_copy(update={section: None})


@pytest.mark.parametrize(
    ("text", "name", "phone"),
    [
        ("Jane Doe, 312 555 0199", "Jane Doe", "3125550199"),
        ("it's jane doe and my number is (312) 555-0199", "Jane Doe", "3125550199"),
        ("Ana María López", "Ana María López", None),
        ("Carlos Ruiz, my mail carlos.ruiz77@hotmail.com", "Carlos Ruiz", None),
    ],
)
async def test_name_and_phone_in_one_message(text: str, name: str, phone: str | None) -> None:
    tracker = make_tracker(
        text, candidates={"customer_name": text}, form="booking_form", requested="customer_name"
    )
    _, slots = await run(ValidateBookingForm(), tracker)
    assert slots["customer_name"] == name
    assert slots.get("customer_phone") == phone


@pytest.mark.parametrize(
    ("opener", "day", "at"),
    [
        ("book stylist sat 11am", "2026-11-21", "11:00"),
        ("can i book a fitting for friday afternoon", "2026-11-20", None),
        ("i'd like to book a styling appointment", None, None),
    ],
)
async def test_a_day_in_the_request_that_starts_the_booking_is_taken(
    business_engine: Engine, opener: str, day: str | None, at: str | None
) -> None:
    """"book stylist sat 11am" was followed by "What day would you like to come in?"."""
    _, slots = await run(ValidateBookingForm(), make_tracker(opener, form="booking_form"))
    assert slots.get("appointment_date") == day
    assert slots.get("appointment_time") == at


async def test_the_booking_request_said_again_with_its_day_fills_the_day(
    business_engine: Engine,
) -> None:
    """"is possible the friday?" while the form asks for the day was read as the booking
    request again: the bot said "Sure, that's what we're doing" and asked for the day again."""
    tracker = make_tracker(
        "is possible the friday?", form="booking_form", requested="appointment_date",
        intent="book_appointment",
    )  # fmt: skip
    _, slots = await run(ValidateBookingForm(), tracker)
    assert slots.get("appointment_date") == "2026-11-20"


async def test_a_time_given_when_asked_for_the_day_is_kept_and_is_no_failed_try(
    business_engine: Engine,
) -> None:
    text = "in the afternoon, 3 o clock maybe"
    tracker = make_tracker(
        text, candidates={"appointment_date": text}, form="booking_form",
        requested="appointment_date",
    )  # fmt: skip
    messages, slots = await run(ValidateBookingForm(), tracker)
    assert slots.get("appointment_date") is None
    assert slots.get("appointment_time") == "15:00"
    assert "3 PM noted" in texts(messages)
    assert not retry_events(messages) and not payloads(messages)


async def test_a_closed_day_asked_for_twice_is_choosing_not_failing(
    business_engine: Engine,
) -> None:
    """A day or time the shop cannot give is refused with the alternatives, never counted:
    the form does not give up on a customer who is choosing."""
    tracker = make_tracker(
        "monday", candidates={"appointment_date": "monday"}, form="booking_form",
        requested="appointment_date",
        history=[{"event": "bot", "text": "Sorry, I didn't understand that date.",
                  "metadata": {"tandem_retry": "booking_form:appointment_date"}}],
    )  # fmt: skip
    messages, slots = await run(ValidateBookingForm(), tracker)
    assert slots["appointment_date"] is None
    assert "closed" in texts(messages).lower()
    assert not retry_events(messages) and not any(m.get("buttons") for m in messages)
    # The gateway is told it was a choice the shop could not give, not a failed try.
    assert payloads(messages) == [{"type": "refused", "question": "booking_form:appointment_date"}]


@pytest.mark.parametrize("text", ["yes that good", "ok", "is it booked?", "thx bye"])
async def test_the_booking_takes_no_answer_or_farewell_as_a_name(text: str) -> None:
    tracker = make_tracker(
        text, candidates={"customer_name": text}, form="booking_form", requested="customer_name"
    )
    messages, slots = await run(ValidateBookingForm(), tracker)
    assert slots["customer_name"] is None
    assert "name" in texts(messages).lower()


@pytest.mark.parametrize(
    ("text", "intent", "requested", "slot_value"),
    [
        ("at 3 in afternoon is possible?", "out_of_scope", "appointment_time", "15:00"),
        ("name is Amira Haddad, it is my wife name", "out_of_scope", "customer_name",
         "Amira Haddad"),
        ("is possible the friday?", "nlu_fallback", "appointment_date", "2026-11-20"),
    ],
)  # fmt: skip
async def test_a_misread_answer_to_the_forms_question_is_taken_and_said_to_be(
    business_engine: Engine, text: str, intent: str, requested: str, slot_value: str
) -> None:
    """Strangers' answers the NLU could not place: the form reads them, and tells the
    gateway it understood (so no misunderstanding is counted towards a handoff)."""
    tracker = make_tracker(text, form="booking_form", requested=requested, intent=intent)
    messages, slots = await run(ValidateBookingForm(), tracker)
    assert slots.get(requested) == slot_value
    assert {"type": "understood", "question": f"booking_form:{requested}"} in payloads(messages)


async def test_a_misread_message_that_answers_nothing_is_not_taken(
    business_engine: Engine,
) -> None:
    tracker = make_tracker(
        "what colour is the sky", form="booking_form", requested="appointment_time",
        intent="out_of_scope",
    )  # fmt: skip
    messages, slots = await run(ValidateBookingForm(), tracker)
    assert "appointment_time" not in slots
    assert not any(p["type"] == "understood" for p in payloads(messages))
