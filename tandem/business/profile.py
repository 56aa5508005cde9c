"""The business profile: `business.yml` loaded, validated and made useful.

Everything the assistant says about the business (name, hours, policies, wording) comes
from this file, so another shop adapts Tandem by editing data, not code. Besides the
models this module answers calendar questions: opening hours on a local date (holidays
override the weekly hours), whether the shop is open at a moment, when it opens next,
and which day a customer means by "tomorrow", "on sat", "xmas" or "12/24".
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class BusinessFileError(Exception):
    """business.yml is missing, unreadable or invalid; the message names file and field."""


# --------------------------------------------------------------------------- wording

# Generic wording for every reply about the business. business.yml may override any of
# them under `messages:`; an override may only use the placeholders of its default (plus
# the common ones), so a typo in a template is caught when the file is loaded.
COMMON_PLACEHOLDERS = frozenset({"business_name", "bot_name", "phone", "email", "website"})

DEFAULT_MESSAGES: dict[str, str] = {
    # who the assistant is
    "greeting": (
        "Hi, I'm {bot_name}, {business_name}'s virtual assistant. I can help with orders, "
        "returns, opening hours, products and appointments. If you'd rather talk to a "
        "person, just say so."
    ),
    "bot_challenge": (
        "Yes, I'm {bot_name}, {business_name}'s virtual assistant, not a person. I can "
        "connect you with someone from our team whenever you like."
    ),
    "talk_to_person_button": "Talk to a person",
    "chat_disclosure": (
        "You're chatting with {bot_name}, {business_name}'s virtual assistant. "
        "You can ask for a person at any time."
    ),
    # An action's acknowledgement: no availability words (the desk adds those, see
    # tandem/desk/availability.py), so it holds whether someone is free or not.
    "handoff_open": "Of course, I'll bring in a person from our team.",
    # the gateway's handoff flow (tandem/desk/)
    "handoff_queued": (
        "You're number {position} in line for a person from our team; the wait is about "
        "{wait}. They'll see our chat so far, so you won't need to repeat yourself."
    ),
    "handoff_queue_update": "You're now number {position} in line (about {wait}).",
    # Once per wait, for what the customer types while queued.
    "handoff_queued_ack": (
        "Got it, I've added that to our chat. The person who picks it up will see everything "
        "you write here."
    ),
    "handoff_staff_joined": "{staff_name} from the {business_name} team has joined the chat.",
    "handoff_transferred": "{staff_name} from our team is taking over the chat.",
    "handoff_offline_no_staff": "Nobody from our team is available to chat right now.",
    "handoff_offline_after_hours": "Our team is away right now; we're back {next_opening}.",
    "handoff_offline_ask_name": (
        "{why} I'll make sure a person gets back to you about this. What's your name?"
    ),
    "handoff_offline_ask_contact": (
        "Thanks, {name}. What e-mail address or phone number should we use to reach you?"
    ),
    "handoff_offline_ask_name_again": (
        "While I have you: what name should I put on your request for our team? "
        '(If you\'d rather not leave your details, just say "no thanks".)'
    ),
    "handoff_offline_ask_contact_again": (
        "And what e-mail address or phone number should our team use to reach you? "
        '(Or say "no thanks" to skip.)'
    ),
    "handoff_offline_email_invalid": (
        '"{email}" doesn\'t look like a complete e-mail address (it should look like '
        "name@example.com). Could you type it again?"
    ),
    "handoff_offline_left_form": (
        "No problem. I've kept your message for our team{ticket_note}. I'm here if you have "
        "any other questions."
    ),
    "handoff_offline_left_form_ticket": " (ticket #{ticket})",
    "handoff_offline_contact_invalid": (
        "That doesn't look like an e-mail address or a phone number. Could you type it again?"
    ),
    "handoff_offline_ticket": (
        "Thank you, {name}. I've saved your request as ticket #{ticket}, and someone from our "
        "team will get back to you at {contact} {when}."
    ),
    "handoff_offline_ticket_more": "I've added that to your ticket #{ticket}.",
    "handoff_reply_by_opening": "by {next_opening}",
    "handoff_reply_soon": "as soon as possible",
    "handoff_returned": (
        "You're back with {bot_name}, the virtual assistant. Is there anything else I can "
        "help you with?"
    ),
    "handoff_csat": (
        "Thanks for chatting with {business_name}. How did we do? Please rate this chat from "
        "1 (poor) to 5 (excellent); you can add a comment too."
    ),
    "wait_under_a_minute": "under a minute",
    "wait_minutes": "{minutes} minutes",
    "complaint": (
        "I'm really sorry about that. I'm passing your message to a person on our team "
        "so they can put it right."
    ),
    "something_went_wrong": (
        "Sorry, something went wrong on my side. Please try again, or ask for a person."
    ),
    # answers to common questions (the facts come from business.yml sections)
    "topic_unknown": (
        "I don't have the details on that here, but a person from our team can help: "
        "call {phone} or e-mail {email}, or ask me for a person."
    ),
    "promotions_running": "On now:\n{lines}",
    "promotion_line": "• {name}: {details} (until {ends}).",
    "promotions_none": "There's no sale on right now.",
    "restock_sold_out": "{name} is sold out in {sizes} right now.",
    "restock_in_stock": "Good news: {name} is in stock in {sizes}.",
    "size_guide_link": "The full size guide: {url}",
    "refund_check_order": "If you tell me your order number, I can check where the order is.",
    "handoff_reason_note": "I'm passing this to a person from our team, who can do it for you.",
    # forms
    "retry_alternatives": (
        "Rather than ask a third time: I can connect you with a person from our team, or "
        "you can start again whenever you have it to hand."
    ),
    "retry_hint_order_number": "Your order number is in your order confirmation e-mail.",
    "retry_hint_order_email": "It's the e-mail address your order confirmation was sent to.",
    "retry_hint_booking_ref": "Your booking reference is in the text we sent when you booked.",
    # The customer says they do not have what the form asks for ("I don't have a reference,
    # I booked over the phone"): asking again would trap them, and only staff can look it up.
    "cannot_give_order_number": (
        "No problem. Without the order number I can't look the order up myself, so I'm "
        "passing you to a person from our team who can find it with you."
    ),
    "cannot_give_order_email": (
        "No problem. Without that e-mail address I can't check the order myself, so I'm "
        "passing you to a person from our team who can."
    ),
    "cannot_give_booking_ref": (
        "No problem. Without the booking reference I can't find the booking myself, so I'm "
        "passing you to a person from our team who can look it up by your name."
    ),
    "start_again_button": "Start again",
    "retry_offer_person": "If you'd like, I can connect you with a person instead.",
    # hours
    "hours_on_day": "On {day} we're open {opens} to {closes}.",
    "hours_today": "Today ({day}) we're open {opens} to {closes}.",
    "hours_on_holiday_today": "Today ({day}, {holiday}) we're open {opens} to {closes}.",
    "closed_today": "We're closed today ({day}).",
    "closed_on_holiday_today": "We're closed today ({day}) for {holiday}.",
    "hours_on_holiday": "On {day} ({holiday}) we're open {opens} to {closes}.",
    "closed_on_day": "We're closed on {day}.",
    "closed_on_holiday": "We're closed on {day} for {holiday}.",
    "hours_weekly": "Our opening hours:\n{lines}",
    "hours_line": "{days}: {hours}",
    "hours_range": "{opens} to {closes}",
    "closed_label": "closed",
    # when the shop opens next ("we open again {next_opening}"): BusinessProfile.reopening
    "reopening_today": "today at {time}",
    "reopening_tomorrow": "tomorrow at {time}",
    "reopening_weekday": "on {weekday} at {time}",  # within the coming week
    "reopening_date": "on {date} at {time}",  # further away (a long holiday break)
    "reopening_unknown": "soon",
    "open_now": "We're open now until {closes}.",
    "closed_now": "We're closed right now. We open again {next_opening}.",
    "special_hours": "Special hours coming up:\n{lines}",
    # where and how to reach us
    "location": (
        "You'll find us at {address}.\n{directions}\nParking: {parking}\nTransit: {transit}"
    ),
    "contact": "You can call us on {phone} or e-mail {email}.",
    # shipping, returns, payment
    "shipping_intro": "Our shipping options:",
    "shipping_option": "• {name}: {cost}, {delivery}{free_over}",
    "shipping_days": "{days} business days",
    "shipping_same_day": "same day",
    "shipping_free_over": " (free on orders over {threshold})",
    "shipping_free": "free",
    "shipping_notes": "{notes}",
    "return_how": "How to return: {steps}",
    "returns_policy": (
        "You can return or exchange items within {window_days} days of delivery. {condition} "
        "Refunds go back to {refund_method} within {refund_days} business days of us "
        "receiving the items. {exchange_process} Final sale (no returns): {final_sale}."
    ),
    "payment_methods": "In store we accept {in_store}. Online we accept {online}.",
    # order verification
    "order_number_invalid": "An order number has five digits, like 10482. Could you check it?",
    "order_not_found": "I couldn't find an order with the number {number}. Could you check it?",
    "email_invalid": "That doesn't look like an e-mail address. Could you type it again?",
    "order_email_still_needed": (
        "I have order number {number} already. To check it I also need the e-mail address "
        "you used for that order."
    ),
    "verification_failed": (
        "Sorry, that order number and e-mail address don't match our records. Let's try again."
    ),
    "verification_locked": (
        "I still can't match those details, so I'll stop here to keep your account safe."
    ),
    "order_not_on_account": "I can't find order {number} on your account.",
    # order status
    "status_pending": "Order #{number} is confirmed and waiting to be packed.",
    "status_processing": "Order #{number} is being packed right now.",
    "status_shipped": "Order #{number} has shipped.",
    "status_out_for_delivery": "Order #{number} is out for delivery today.",
    "status_delivered": "Order #{number} was delivered on {delivered}.",
    "status_cancelled": "Order #{number} was cancelled on {cancelled}.",
    "status_returned": "Order #{number} was returned and refunded.",
    "order_tracking": "It's travelling with {carrier}, tracking number {tracking_number}.",
    "order_expected": "Expected delivery: {expected}.",
    "order_items": "Items: {items}. Total: {total}.",
    "recent_orders": "Here are your latest orders:\n{lines}\nAsk me about one by its number.",
    "recent_order_line": "• #{number} placed {placed}: {status}, {total}",
    "no_orders": "I can't find any orders on your account.",
    "status_label_pending": "confirmed",
    "status_label_processing": "being packed",
    "status_label_shipped": "shipped",
    "status_label_out_for_delivery": "out for delivery",
    "status_label_delivered": "delivered",
    "status_label_cancelled": "cancelled",
    "status_label_returned": "returned",
    # cancelling an order
    "cancel_possible": "Order #{number} ({items}, {total}) hasn't shipped yet, so I can cancel it.",
    "cancel_shipped": "Order #{number} has already shipped, so it can't be cancelled any more.",
    "cancel_delivered": (
        "Order #{number} has been delivered, so it can't be cancelled, but you can return "
        'it within {window_days} days of delivery. Just say "start a return".'
    ),
    "cancel_already_cancelled": "Order #{number} is already cancelled.",
    "cancel_returned": "Order #{number} has already been returned.",
    "cancel_done": (
        "Done: order #{number} is cancelled. {total} goes back to your original payment "
        "method within {refund_days} business days."
    ),
    "cancel_kept": "OK, I've left order #{number} as it is.",
    # returns and exchanges
    "return_not_delivered": (
        "Order #{number} hasn't been delivered yet ({status}), so it can't be returned yet."
    ),
    "return_not_shipped": (
        "Order #{number} hasn't shipped yet ({status}). You can cancel it instead: "
        'just say "cancel my order".'
    ),
    "return_cancelled_order": "Order #{number} was cancelled, so there's nothing to return.",
    "return_already_returned": "Order #{number} has already been returned.",
    "return_window_passed": (
        "Order #{number} was delivered on {delivered}, more than {window_days} days ago, "
        "so it's outside our return window."
    ),
    "return_already_requested": "There's already an open {kind} request for order #{number}.",
    "return_eligible": "Order #{number} can still be returned or exchanged until {last_day}.",
    "return_type_invalid": "Would you like a return (refund) or an exchange?",
    "return_created": "I've opened your {kind} request for order #{number}.",
    "return_next_steps": "{steps}",
    "kind_return": "return",
    "kind_exchange": "exchange",
    # products
    "product_ask_which": "Which product would you like to know about?",
    "product_not_found": (
        'Sorry, I couldn\'t find a product called "{query}". We carry {categories}.'
    ),
    "product_summary": "{name} costs {price} and comes in {colours}.",
    "product_in_stock_sizes": "In stock in sizes {sizes}.",
    "product_in_stock_one_size": "It's in stock.",
    "product_colour": "Yes, {name} comes in {colour} ({price}).",
    "product_colour_missing": "{name} doesn't come in {colour}; it comes in {colours}.",
    "product_search_intro": "Here's what we have ({count}):",
    "product_search_line": "• {name}, {price}: {stock}",
    "product_search_in_size": "{stock} in {size}",
    "product_search_sold_out_in_size": "sold out in {size}",
    "product_search_sizes": "in stock in {sizes}",
    "product_search_none": "Sorry, nothing in the shop matches that right now.",
    "product_sold_out_sizes": "Sold out in {sizes}.",
    "product_all_sold_out": "It's sold out in every size right now.",
    "product_size_in_stock": "Yes, {name} is in stock in size {size}.",
    "product_size_low_stock": "Yes, {name} is in stock in size {size}, but only {stock} left.",
    "product_size_sold_out": "Sorry, {name} is sold out in size {size}.",
    "product_size_unknown": "{name} doesn't come in size {size}. It comes in {sizes}.",
    # appointments
    "booking_date_unparsed": (
        'Sorry, I didn\'t understand that date. Try something like "Saturday" or "December 12".'
    ),
    "booking_time_before_day": "{time} noted.",
    "booking_date_past": "{day} has already passed. Which day would you like?",
    "booking_date_closed": "We're closed on {day}. Which other day would suit you?",
    "booking_date_too_far": (
        "We take bookings up to {horizon_days} days ahead, so the latest day is {last_day}."
    ),
    "booking_date_full": (
        "Sorry, {day} is fully booked. The next day with free times is {next_day}."
    ),
    "booking_free_times": "On {day} I have free times from {first} to {last}.",
    "booking_free_times_part": "On {day} {part} I have {times} free. Which time would you like?",
    "booking_part_full": (
        "{day} {part} is fully booked, sorry. That day I have free times from {first} to "
        "{last}."
    ),
    "booking_time_unparsed": 'I didn\'t catch a time. Try something like "2pm" or "14:30".',
    "booking_time_outside_hours": (
        "On {day} we're open {opens} to {closes}, so the last {appointment_name} starts "
        "at {last_start}. Which time would you like?"
    ),
    "booking_time_off_grid": (
        "Appointments start every {interval} minutes. Nearest free times: {alternatives}."
    ),
    "booking_time_too_soon": (
        "We need at least {min_notice_hours} hours' notice. Nearest free times: {alternatives}."
    ),
    "booking_time_taken": "Sorry, {time} on {day} is taken. Nearest free times: {alternatives}.",
    "booking_no_alternatives": "none that day",
    "booking_name_invalid": "Please tell me your name (at least two letters).",
    "booking_phone_invalid": "A phone number has 7 to 15 digits. Could you type it again?",
    "booking_confirmed": (
        "You're booked: {appointment_name} on {when} ({duration} minutes). Your reference "
        "is {ref}. {appointment_note}"
    ),
    "booking_ref_invalid": "A booking reference looks like BK-2041. Could you check it?",
    "booking_not_found": "I couldn't find booking {ref}. Could you check the reference?",
    "booking_already_cancelled": "Booking {ref} has already been cancelled.",
    "booking_in_past": "Booking {ref} was on {when}, so it can't be changed any more.",
    "booking_current": "Booking {ref} is on {when}.",
    "booking_same_time": "That's the time booking {ref} already has.",
    "booking_rescheduled": "Done: booking {ref} is moved to {when}.",
    "booking_cancelled": "Booking {ref} on {when} is cancelled. We hope to see you another time.",
}


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# ------------------------------------------------------------------------- sections


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TimeRange:
    opens: time
    closes: time


def _parse_hours(value: Any) -> TimeRange | None:
    """'closed' -> None; '10:00-19:00' -> TimeRange. Raises ValueError with the reason."""
    if isinstance(value, TimeRange) or value is None:
        return value
    if isinstance(value, str) and value.strip().lower() == "closed":
        return None
    match = _HOURS_RE.match(str(value))
    if not match:
        raise ValueError(f"expected 'closed' or 'HH:MM-HH:MM', got {value!r}")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    try:
        opens, closes = time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise ValueError(f"invalid time in {value!r}: {exc}") from None
    if closes <= opens:
        raise ValueError(f"closing time must be after opening time in {value!r}")
    return TimeRange(opens, closes)


Hours = Annotated[TimeRange | None, Field(description="'closed' or 'HH:MM-HH:MM'")]


class BusinessInfo(_Section):
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1, description="what the business is, e.g. 'clothing boutique'")
    timezone: str
    website: str = ""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    currency_symbol: str = "$"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class BotInfo(_Section):
    name: str = Field(min_length=1)


class Contact(_Section):
    phone: str = Field(min_length=3)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Location(_Section):
    address: str = Field(min_length=3)
    directions: str = ""
    parking: str = ""
    transit: str = ""
    map_url: str = ""


class WeeklyHours(_Section):
    monday: Hours
    tuesday: Hours
    wednesday: Hours
    thursday: Hours
    friday: Hours
    saturday: Hours
    sunday: Hours

    @field_validator(*WEEKDAYS, mode="before")
    @classmethod
    def _parse(cls, value: Any) -> TimeRange | None:
        return _parse_hours(value)

    def for_weekday(self, weekday: int) -> TimeRange | None:
        return getattr(self, WEEKDAYS[weekday])


class Holiday(_Section):
    name: str = Field(min_length=1)
    aliases: list[str] = []
    dates: list[date] = Field(min_length=1)
    hours: Hours = None

    @field_validator("hours", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> TimeRange | None:
        return _parse_hours(value)

    def phrases(self) -> list[str]:
        """Normalised names customers may use: the name, its aliases, and the name
        without a trailing 'day' ("New Year's Day" -> "new years")."""
        names = [self.name, *self.aliases]
        found = {_normalise(n) for n in names}
        found |= {p[: -len(" day")] for p in found if p.endswith(" day") and len(p) > 8}
        return sorted(p for p in found if p)


class ShippingOption(_Section):
    name: str
    cost: Decimal = Field(ge=0)
    free_over: Decimal | None = Field(default=None, ge=0)
    min_days: int = Field(ge=0)
    max_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _days_in_order(self) -> ShippingOption:
        if self.max_days < self.min_days:
            raise ValueError("max_days must not be smaller than min_days")
        return self


class Shipping(_Section):
    options: list[ShippingOption] = Field(min_length=1)
    area: str = Field(default="", description="where you ship, said first when asked")
    notes: str = ""


class Returns(_Section):
    window_days: int = Field(gt=0)
    condition: str
    refund_method: str
    refund_days: int = Field(gt=0)
    exchange_process: str
    final_sale: list[str] = []
    return_steps: str
    exchange_steps: str


class Payments(_Section):
    in_store: list[str] = Field(min_length=1)
    online: list[str] = Field(min_length=1)


class Appointments(_Section):
    name: str = Field(min_length=1, description="what one appointment is called")
    duration_minutes: int = Field(gt=0, le=480)
    slot_interval_minutes: int = Field(default=30, gt=0, le=240)
    stylists: int = Field(gt=0, description="how many appointments can run at once")
    horizon_days: int = Field(gt=0)
    min_notice_hours: int = Field(ge=0)
    note: str = ""


# Answers to common shopper questions. Each section is optional: without it the assistant
# says it has no details and offers a person.


class Promotion(_Section):
    name: str = Field(min_length=1)
    details: str = Field(min_length=1)
    starts: date
    ends: date

    @model_validator(mode="after")
    def _dates_in_order(self) -> Promotion:
        if self.ends < self.starts:
            raise ValueError("ends must not be before starts")
        return self


class Promotions(_Section):
    current: list[Promotion] = []
    codes: str = Field(min_length=1, description="how promo codes work")
    code_not_working: str = Field(min_length=1, description="why a code may be refused")
    signup_offer: str = ""

    def running(self, today: date) -> list[Promotion]:
        return [p for p in self.current if p.starts <= today <= p.ends]


class GiftCards(_Section):
    summary: str = Field(min_length=1)
    balance: str = ""
    store_credit: str = ""



class SizeGuide(_Section):
    summary: str = Field(min_length=1)
    fit_advice: str = ""
    url: str = ""


class AccountHelp(_Section):
    password: str = Field(min_length=1)
    login: str = Field(min_length=1)
    details: str = ""


class TextSection(_Section):
    """A section that is one answer."""

    summary: str = Field(min_length=1)


class Refunds(_Section):
    status: str = Field(min_length=1)
    how_to: str = ""





class Newsletter(_Section):
    subscribe: str = Field(min_length=1)
    unsubscribe: str = Field(min_length=1)


class Locale(_Section):
    languages: list[str] = ["en"]
    date_order: Literal["MDY", "DMY", "YMD"] = "MDY"
    clock: Literal["12h", "24h"] = "12h"


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class DayHours:
    """Opening hours on one local date; `hours` is None when closed."""

    day: date
    hours: TimeRange | None
    holiday: str | None = None

    @property
    def is_open(self) -> bool:
        return self.hours is not None


class BusinessProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    business: BusinessInfo
    bot: BotInfo
    contact: Contact
    location: Location
    hours: WeeklyHours
    holidays: list[Holiday] = []
    shipping: Shipping
    returns: Returns
    payments: Payments
    appointments: Appointments
    locale: Locale = Locale()
    promotions: Promotions | None = None
    gift_cards: GiftCards | None = None
    price_match: TextSection | None = None
    size_guide: SizeGuide | None = None
    account: AccountHelp | None = None
    invoices: TextSection | None = None
    refunds: Refunds | None = None
    order_changes: TextSection | None = None
    payment_problems: TextSection | None = None
    restock: TextSection | None = None
    feedback: TextSection | None = None
    newsletter: Newsletter | None = None
    wholesale: TextSection | None = None
    accessibility: TextSection | None = None
    messages: dict[str, str] = {}

    @field_validator("messages")
    @classmethod
    def _known_messages(cls, overrides: dict[str, str]) -> dict[str, str]:
        problems = []
        for key, template in overrides.items():
            if key not in DEFAULT_MESSAGES:
                problems.append(f"unknown message {key!r}")
                continue
            try:
                used = template_fields(template)
            except ValueError as exc:
                problems.append(f"{key}: broken template ({exc})")
                continue
            allowed = template_fields(DEFAULT_MESSAGES[key]) | COMMON_PLACEHOLDERS
            if unknown := used - allowed:
                problems.append(
                    f"{key}: unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return overrides

    @model_validator(mode="after")
    def _holidays_unambiguous(self) -> BusinessProfile:
        seen_dates: dict[date, str] = {}
        seen_phrases: dict[str, str] = {}
        for holiday in self.holidays:
            for day in holiday.dates:
                if day in seen_dates:
                    raise ValueError(
                        f"holiday date {day} is listed for both {seen_dates[day]!r} "
                        f"and {holiday.name!r}"
                    )
                seen_dates[day] = holiday.name
            for phrase in holiday.phrases():
                other = seen_phrases.setdefault(phrase, holiday.name)
                if other != holiday.name:
                    raise ValueError(
                        f"holiday name or alias {phrase!r} is used by both {other!r} "
                        f"and {holiday.name!r}"
                    )
        return self

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | str) -> BusinessProfile:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BusinessFileError(f"{path}: file not found") from None
        except OSError as exc:
            raise BusinessFileError(f"{path}: cannot read ({exc})") from None
        except yaml.YAMLError as exc:
            raise BusinessFileError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise BusinessFileError(f"{path}: expected a mapping at the top level")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise BusinessFileError(_describe(path, exc)) from None

    # ------------------------------------------------------------------ wording

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business.timezone)

    def say(self, key: str, **values: Any) -> str:
        """The message `key` (business.yml override or generic default), filled in."""
        template = self.messages.get(key) or DEFAULT_MESSAGES[key]
        common = {
            "business_name": self.business.name,
            "bot_name": self.bot.name,
            "phone": self.contact.phone,
            "email": self.contact.email,
            "website": self.business.website,
        }
        # no strip(): fragments such as shipping_free_over start with a space on purpose
        return template.format(**{**common, **values})

    def money(self, amount: Decimal | float | int) -> str:
        return f"{self.business.currency_symbol}{Decimal(amount):,.2f}"

    def format_time(self, value: time) -> str:
        if self.locale.clock == "24h":
            return value.strftime("%H:%M")
        hour = value.hour % 12 or 12
        suffix = "AM" if value.hour < 12 else "PM"
        return f"{hour} {suffix}" if value.minute == 0 else f"{hour}:{value.minute:02d} {suffix}"

    def format_date(self, day: date, today: date | None = None) -> str:
        label = f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}"
        if today is not None and day.year != today.year:
            label += f", {day.year}"
        return label

    def format_moment(self, moment: datetime, today: date | None = None) -> str:
        local = moment.astimezone(self.tz)
        return f"{self.format_date(local.date(), today)} at {self.format_time(local.time())}"

    def reopening(self, now: datetime) -> str:
        """When the shop opens next, in words: "today at 10 AM", "tomorrow at 10 AM",
        "on Tuesday at 10 AM" (or a date further than a week away). The words are the
        `reopening_*` messages, so another business or language edits business.yml."""
        opening = self.next_opening(now)
        if opening is None:
            return self.say("reopening_unknown")
        today = self.local_now(now).date()
        day = opening.date()
        at = self.format_time(opening.time())
        ahead = (day - today).days
        if ahead == 0:
            return self.say("reopening_today", time=at)
        if ahead == 1:
            return self.say("reopening_tomorrow", time=at)
        if ahead < 7:
            return self.say("reopening_weekday", weekday=day.strftime("%A"), time=at)
        return self.say("reopening_date", date=self.format_date(day, today), time=at)

    def join(self, items: Iterable[str], conjunction: str = "and") -> str:
        items = list(items)
        if len(items) <= 1:
            return "".join(items)
        return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"

    # ------------------------------------------------------------------ hours

    def local_now(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)).astimezone(self.tz)

    def holiday_on(self, day: date) -> Holiday | None:
        return next((h for h in self.holidays if day in h.dates), None)

    def hours_on(self, day: date) -> DayHours:
        """Opening hours on a local date; a holiday overrides the weekly hours."""
        holiday = self.holiday_on(day)
        if holiday is not None:
            return DayHours(day, holiday.hours, holiday.name)
        return DayHours(day, self.hours.for_weekday(day.weekday()))

    def opening_interval(self, day: date) -> tuple[datetime, datetime] | None:
        """Aware (local) opening and closing moments on a date, or None when closed."""
        hours = self.hours_on(day).hours
        if hours is None:
            return None
        return (
            datetime.combine(day, hours.opens, self.tz),
            datetime.combine(day, hours.closes, self.tz),
        )

    def is_open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        interval = self.opening_interval(local.date())
        return interval is not None and interval[0] <= local < interval[1]

    def is_open_now(self, now: datetime | None = None) -> bool:
        return self.is_open_at(self.local_now(now))

    def next_opening(self, after: datetime, search_days: int = 31) -> datetime | None:
        """The next moment the shop opens strictly after `after` (local, aware)."""
        local = after.astimezone(self.tz)
        for offset in range(search_days + 1):
            interval = self.opening_interval(local.date() + timedelta(days=offset))
            if interval is not None and interval[0] > local:
                return interval[0]
        return None

    def closing_time(self, moment: datetime) -> datetime | None:
        """When the shop closes, if it is open at `moment`."""
        local = moment.astimezone(self.tz)
        interval = self.opening_interval(local.date())
        if interval is None or not (interval[0] <= local < interval[1]):
            return None
        return interval[1]

    def upcoming_holidays(self, today: date, days: int) -> list[DayHours]:
        end = today + timedelta(days=days)
        found = [
            self.hours_on(day)
            for holiday in self.holidays
            for day in holiday.dates
            if today <= day <= end
        ]
        return sorted(found, key=lambda d: d.day)

    # ------------------------------------------------------------------ day parsing

    def resolve_day(self, text: str, today: date) -> date | None:
        """The local date a customer means, or None when the text names no day.

        Understands holiday names and aliases from the file (next occurrence), explicit
        dates ("dec 24", "12/24", "24 december"), "today"/"tonight"/"tomorrow", "in 3
        days", and weekday names: "saturday", "on sat", "this saturday" mean the next
        such day counting today; "next monday" means the first one after today.
        """
        cleaned = _normalise(text)
        if not cleaned:
            return None
        return (
            self._resolve_holiday(cleaned, today)
            or self._resolve_relative(cleaned, today)
            or self._resolve_explicit(cleaned, today)
            or _resolve_weekday(cleaned, today)
            or _resolve_day_of_month(cleaned, today)
        )

    def names_only_a_weekday(self, text: str, today: date) -> bool:
        """"thursday at 2", "on sat": a weekday name is what sets the day (not "today",
        a date or a holiday), checked in `resolve_day`'s order."""
        cleaned = _normalise(text)
        return (
            bool(_WEEKDAY_RE.search(cleaned))
            and self._resolve_holiday(cleaned, today) is None
            and self._resolve_relative(cleaned, today) is None
            and self._resolve_explicit(cleaned, today) is None
        )

    def _resolve_holiday(self, cleaned: str, today: date) -> date | None:
        candidates = [(phrase, h) for h in self.holidays for phrase in h.phrases()]
        # longest phrase first, so "christmas eve" wins over "christmas"
        for phrase, holiday in sorted(candidates, key=lambda c: -len(c[0])):
            if re.search(rf"\b{re.escape(phrase)}\b", cleaned):
                upcoming = sorted(d for d in holiday.dates if d >= today)
                return upcoming[0] if upcoming else max(holiday.dates)
        return None

    def _resolve_relative(self, cleaned: str, today: date) -> date | None:
        if re.search(r"\bday after tomorrow\b", cleaned):
            return today + timedelta(days=2)
        if re.search(r"\b(tomorrow|tmrw|tmr|tomorow|tommorow)\b", cleaned):
            return today + timedelta(days=1)
        if re.search(r"\b(today|tonight|this evening|this afternoon|this morning|now)\b", cleaned):
            return today
        match = re.search(r"\bin (\d{1,3}|a|one|two|three) (day|days|week|weeks)\b", cleaned)
        if match:
            words = {"a": 1, "one": 1, "two": 2, "three": 3}
            count = words.get(match.group(1)) or int(match.group(1))
            return today + timedelta(days=count * (7 if match.group(2).startswith("week") else 1))
        return None

    def _resolve_explicit(self, cleaned: str, today: date) -> date | None:
        import dateparser  # slow to import; only needed here

        settings: dict[str, Any] = {
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": datetime.combine(today, time(12, 0)),
            "DATE_ORDER": self.locale.date_order,
            "REQUIRE_PARTS": ["day", "month"],
        }
        for candidate in _date_candidates(cleaned):
            parsed = dateparser.parse(candidate, languages=self.locale.languages, settings=settings)
            if parsed is None:
                continue
            day = parsed.date()
            if not re.search(r"\d{4}|\d{1,2}/\d{1,2}/\d{2}\b", candidate):
                # no year given: the nearest date that is not in the past ("nov 25" today)
                while True:
                    try:
                        earlier = day.replace(year=day.year - 1)
                    except ValueError:  # 29 February
                        break
                    if earlier < today:
                        break
                    day = earlier
            return day
        return None


# ----------------------------------------------------------------------- helpers

_MONTHS = (
    r"jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|"
    r"sep|sept|september|oct|october|nov|november|dec|december"
)
_DAY_NUMBER = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE_PATTERNS = (
    re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b"),
    re.compile(r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"),
    re.compile(rf"\b(?:{_MONTHS})\.? (?:the )?{_DAY_NUMBER}(?: \d{{4}})?\b"),
    re.compile(rf"\b(?:the )?{_DAY_NUMBER} (?:of )?(?:{_MONTHS})\b(?: \d{{4}})?"),
)
# "the 12th", "on the 12", "the 12": a day of this month or the next ("the 12 people" is
# not: the number must end the phrase or be followed by an ordinal suffix)
_DAY_OF_MONTH = re.compile(r"\bthe (\d{1,2})(?:st|nd|rd|th\b|\s*$|(?= (?:please|pls|if)\b))")
_WEEKDAY_NAMES = {
    "mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2,
    "wednesday": 2, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4, "friday": 4,
    "sat": 5, "saturday": 5, "sun": 6, "sunday": 6,
}  # fmt: skip
_WEEKDAY_RE = re.compile(
    r"\b(?:(next|this|coming|this coming)\s+)?("
    + "|".join(sorted(_WEEKDAY_NAMES, key=len, reverse=True))
    + r")s?\b"
)


def _normalise(text: str) -> str:
    """Lower-case, apostrophes dropped ("new year's" -> "new years"), punctuation to
    spaces except the characters dates need."""
    text = text.lower().replace("’", "'").replace("'", "")
    text = re.sub(r"[^a-z0-9/:\-]+", " ", text)
    text = re.sub(r"(?<![0-9])-|-(?![0-9])", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _date_candidates(cleaned: str) -> list[str]:
    return [match.group(0) for pattern in _DATE_PATTERNS for match in pattern.finditer(cleaned)]


def _resolve_day_of_month(cleaned: str, today: date) -> date | None:
    """ "on the 12th": the next date with that day of the month, counting today."""
    match = _DAY_OF_MONTH.search(cleaned)
    if not match:
        return None
    wanted = int(match.group(1))
    for ahead in range(62):
        day = today + timedelta(days=ahead)
        if day.day == wanted:
            return day
    return None


def _resolve_weekday(cleaned: str, today: date) -> date | None:
    match = _WEEKDAY_RE.search(cleaned)
    if not match:
        return None
    ahead = (_WEEKDAY_NAMES[match.group(2)] - today.weekday()) % 7
    if match.group(1) == "next" and ahead == 0:
        ahead = 7
    if re.search(r"\bnext week\b", cleaned):
        # "next week thursday": that weekday in the next calendar week (weeks start Monday)
        monday = today + timedelta(days=7 - today.weekday())
        return monday + timedelta(days=_WEEKDAY_NAMES[match.group(2)])
    return today + timedelta(days=ahead)


def _describe(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: {error.error_count()} problem(s)"]
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        lines.append(f"  {field}: {message}")
    return "\n".join(lines)


@lru_cache(maxsize=4)
def load_profile(path: Path | str) -> BusinessProfile:
    """Load once per path; actions and the gateway share the parsed profile."""
    return BusinessProfile.load(path)


def get_profile() -> BusinessProfile:
    """The profile named by settings (BUSINESS_FILE), cached."""
    from tandem.config import get_settings

    return load_profile(Path(get_settings().business_file))
