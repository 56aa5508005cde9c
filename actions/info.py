"""Facts about the business: greeting, identity, hours, location, contact, policies."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import actions.common as common
from actions.common import latest_text, profile
from tandem.business.profile import WEEKDAYS, BusinessProfile, DayHours

SPECIAL_HOURS_LOOKAHEAD_DAYS = 14
# "On today (...)" reads badly: today's sentences have their own wording
_TODAY_KEYS = {
    "hours_on_day": "hours_today",
    "hours_on_holiday": "hours_on_holiday_today",
    "closed_on_day": "closed_today",
    "closed_on_holiday": "closed_on_holiday_today",
}
# a question about where (not how) we ship: "ship to canada", "deliver abroad"
_ASKS_WHERE = re.compile(
    r"\b(ship|deliver|send|post)\w*\s+(to|in|into|outside|overseas|abroad|internationally)\b"
    r"|\b(international|overseas|abroad|countries|country|worldwide)\b",
    re.IGNORECASE,
)


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=profile().say("greeting"))
        return []


class ActionBotChallenge(Action):
    def name(self) -> str:
        return "action_bot_challenge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=profile().say("bot_challenge"))
        return []


def _day_sentence(p: BusinessProfile, hours: DayHours, today: date) -> str:
    day = p.format_date(hours.day, today)
    if hours.hours is None:
        key = "closed_on_holiday" if hours.holiday else "closed_on_day"
        if hours.day == today:
            key = _TODAY_KEYS[key]
        return p.say(key, day=day, holiday=hours.holiday or "")
    key = "hours_on_holiday" if hours.holiday else "hours_on_day"
    if hours.day == today:
        key = _TODAY_KEYS[key]
    return p.say(
        key,
        day=day,
        holiday=hours.holiday or "",
        opens=p.format_time(hours.hours.opens),
        closes=p.format_time(hours.hours.closes),
    )


def weekly_lines(p: BusinessProfile) -> list[str]:
    """One line per run of consecutive weekdays with the same hours."""
    groups: list[tuple[list[str], str]] = []
    for index, weekday in enumerate(WEEKDAYS):
        hours = p.hours.for_weekday(index)
        label = (
            p.say("closed_label")
            if hours is None
            else p.say(
                "hours_range", opens=p.format_time(hours.opens), closes=p.format_time(hours.closes)
            )
        )
        if groups and groups[-1][1] == label:
            groups[-1][0].append(weekday)
        else:
            groups.append(([weekday], label))
    lines = []
    for days, label in groups:
        span = days[0].title() if len(days) == 1 else f"{days[0].title()}–{days[-1].title()}"
        lines.append(p.say("hours_line", days=span, hours=label))
    return lines


def now_sentence(p: BusinessProfile) -> str:
    now = common.clock()
    closes = p.closing_time(now)
    if closes is not None:
        return p.say("open_now", closes=p.format_time(closes.time()))
    return p.say("closed_now", next_opening=p.reopening(now))


class ActionOpeningHours(Action):
    def name(self) -> str:
        return "action_opening_hours"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        p = profile()
        today = p.local_now(common.clock()).date()
        asked = p.resolve_day(latest_text(tracker), today)
        if asked is not None:
            sentences = [_day_sentence(p, p.hours_on(asked), today)]
            if asked == today:
                sentences.append(now_sentence(p))
            dispatcher.utter_message(text=" ".join(s for s in sentences if s))
            return []
        parts = [p.say("hours_weekly", lines="\n".join(weekly_lines(p))), now_sentence(p)]
        special = p.upcoming_holidays(today, SPECIAL_HOURS_LOOKAHEAD_DAYS)
        if special:
            lines = "\n".join(f"• {_day_sentence(p, h, today)}" for h in special)
            parts.append(p.say("special_hours", lines=lines))
        dispatcher.utter_message(text="\n".join(part for part in parts if part))
        return []


class ActionLocation(Action):
    def name(self) -> str:
        return "action_location"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        loc = profile().location
        text = profile().say(
            "location",
            address=loc.address,
            directions=loc.directions,
            parking=loc.parking,
            transit=loc.transit,
        )
        dispatcher.utter_message(text="\n".join(line for line in text.splitlines() if line.strip()))
        return []


class ActionContact(Action):
    def name(self) -> str:
        return "action_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=profile().say("contact"))
        return []


class ActionShippingInfo(Action):
    def name(self) -> str:
        return "action_shipping_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        p = profile()
        lines = [p.say("shipping_intro")]
        if p.shipping.area and _ASKS_WHERE.search(latest_text(tracker)):
            lines.insert(0, p.shipping.area)  # "do u ship to canada": the answer comes first
        for option in p.shipping.options:
            days = (
                str(option.min_days)
                if option.min_days == option.max_days
                else f"{option.min_days}–{option.max_days}"
            )
            free_over = (
                p.say("shipping_free_over", threshold=p.money(option.free_over))
                if option.free_over is not None
                else ""
            )
            cost = p.say("shipping_free") if option.cost == 0 else p.money(option.cost)
            lines.append(
                p.say(
                    "shipping_option",
                    name=option.name,
                    cost=cost,
                    delivery=p.say("shipping_same_day")
                    if option.max_days == 0
                    else p.say("shipping_days", days=days),
                    free_over=free_over,
                )
            )
        if p.shipping.notes:
            lines.append(p.say("shipping_notes", notes=p.shipping.notes))
        dispatcher.utter_message(text="\n".join(lines))
        return []


def returns_policy_text(p: BusinessProfile) -> str:
    r = p.returns
    values: dict[str, Any] = {
        "window_days": r.window_days,
        "condition": r.condition,
        "refund_method": r.refund_method,
        "refund_days": r.refund_days,
        "exchange_process": r.exchange_process,
        "final_sale": p.join(r.final_sale) if r.final_sale else "-",
    }
    return p.say("returns_policy", **values)


class ActionReturnsPolicy(Action):
    def name(self) -> str:
        return "action_returns_policy"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        p = profile()
        how = p.say("return_how", steps=p.returns.return_steps)
        dispatcher.utter_message(text=f"{returns_policy_text(p)} {how}")
        return []


class ActionPaymentMethods(Action):
    def name(self) -> str:
        return "action_payment_methods"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        p = profile()
        dispatcher.utter_message(
            text=p.say(
                "payment_methods",
                in_store=p.join(p.payments.in_store),
                online=p.join(p.payments.online),
            )
        )
        return []
