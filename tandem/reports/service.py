"""Owner reports, built from `conversation_events` rows plus the stored messages.

Definitions (the dashboard and the tests rely on them):

- A conversation counts once it has at least one customer message; empty widget opens
  are left out of the log, the exports and the outcome shares.
- Outcome: `ticket` if it ever reached offline_ticket, else `handed_off` if it was ever
  escalated or queued, else `bot`. The log adds `open` for a handoff still in progress
  (queued or with staff right now); reports count those as `handed_off`.
- Sentiment bucket by the average score of the customer's messages:
  <= -0.25 negative, >= 0.25 positive, else neutral.
- Days and hours are in the business's timezone (business.yml), else UTC.
- Tickets: those filed in the period (the offline fallback), how many are done, and time
  to resolution (filed to marked done in the inbox, p50 and p90) over the done ones.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tandem.business.models import Customer, CustomerTier
from tandem.conversations.models import Conversation, ConversationEvent, Message, Ticket
from tandem.conversations.states import State
from tandem.db import utcnow
from tandem.staff.models import StaffUser

NEGATIVE_AT = -0.25
POSITIVE_AT = 0.25
FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
OUTCOMES = ("bot", "handed_off", "ticket")
LOG_OUTCOMES = (*OUTCOMES, "open")
SENTIMENTS = ("negative", "neutral", "positive")
DEFAULT_DAYS = 30
MAX_PERIOD_DAYS = 366
MAX_PAGE_SIZE = 200
MAX_QUERY_CHARS = 200
_TRIGGER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Human labels for the trigger names in escalation events (handoff/policy.py triggers,
# plus the names actions use when they ask for a person themselves).
TRIGGER_LABELS: dict[str, str] = {
    "frustration": "Frustration",
    "negative_streak": "Negative messages in a row",
    "human_request": "Asked for a person",
    "request_human": "Asked for a person",
    "fallbacks": "Bot did not understand",
    "repeated_intent": "Same question again and again",
    "complaint": "Complaint",
    "large_cancellation": "Large order cancellation",
    "legal": "Legal language",
    "high_value": "High-value customer",
    "purchase_intent": "Sales lead",
}


class ReportError(ValueError):
    """A bad filter value; `field` names the parameter and the message is fit to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def trigger_label(name: str) -> str:
    return TRIGGER_LABELS.get(name, name.replace("_", " ").capitalize())


def business_timezone(business_file: Path | str | None) -> tzinfo:
    """The business's timezone from business.yml, or UTC when it cannot be read."""
    if business_file is None:
        return UTC
    try:
        from tandem.business.profile import load_profile

        return ZoneInfo(load_profile(business_file).business.timezone)
    except Exception:  # a missing or broken file must not break the reports
        return UTC


# ------------------------------------------------------------------ periods and filters


@dataclass(frozen=True)
class Period:
    """Whole local days, `start` to `end` inclusive."""

    start: date
    end: date
    tz: tzinfo

    def bounds(self) -> tuple[datetime, datetime]:
        """UTC [from, to) instants covering the local days."""
        lower = datetime.combine(self.start, time(0), self.tz).astimezone(UTC)
        upper = datetime.combine(self.end + timedelta(days=1), time(0), self.tz).astimezone(UTC)
        return lower, upper

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def to_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(field, f"{value!r} is not a date; use YYYY-MM-DD.") from None


def make_period(
    start: str | None,
    end: str | None,
    tz: tzinfo,
    *,
    now: datetime | None = None,
    default_days: int | None = DEFAULT_DAYS,
) -> Period:
    """The period from the `from`/`to` parameters; missing ends default to the last 30 days.

    With `default_days=None` a missing `from` means "since the beginning" (the log).
    """
    today = (now or utcnow()).astimezone(tz).date()
    last = parse_day(end, "to") if end else today
    if start:
        first = parse_day(start, "from")
    elif default_days is None:
        first = date(2000, 1, 1)
    else:
        first = last - timedelta(days=default_days - 1)
    if first > last:
        raise ReportError("from", f"the period starts ({first}) after it ends ({last}).")
    if default_days is not None and (last - first).days >= MAX_PERIOD_DAYS:
        raise ReportError("from", f"a report covers at most {MAX_PERIOD_DAYS} days.")
    return Period(first, last, tz)


@dataclass(frozen=True)
class LogFilters:
    period: Period
    outcome: str | None = None
    sentiment: str | None = None
    reason: str | None = None
    staff_id: int | None = None
    tier: str | None = None
    q: str | None = None


def parse_filters(params: Mapping[str, str | None], tz: tzinfo) -> LogFilters:
    """The log's (and the exports') query parameters, checked; ReportError on bad values."""

    def value(name: str) -> str | None:
        raw = params.get(name)
        return raw.strip() if raw is not None and raw.strip() else None

    period = make_period(value("from"), value("to"), tz, default_days=None)
    outcome = value("outcome")
    if outcome is not None and outcome not in LOG_OUTCOMES:
        raise ReportError("outcome", f"{outcome!r} is not one of {', '.join(LOG_OUTCOMES)}.")
    sentiment = value("sentiment")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise ReportError("sentiment", f"{sentiment!r} is not one of {', '.join(SENTIMENTS)}.")
    reason = value("reason")
    if reason is not None and not _TRIGGER_NAME.match(reason):
        raise ReportError("reason", f"{reason!r} is not a trigger name (e.g. frustration).")
    staff_raw = value("staff_id")
    staff_id: int | None = None
    if staff_raw is not None:
        if not staff_raw.isdigit():
            raise ReportError("staff_id", f"{staff_raw!r} is not a staff id (a number).")
        staff_id = int(staff_raw)
    tier = value("tier")
    tiers = [t.value for t in CustomerTier]
    if tier is not None:
        tier = tier.lower()
        if tier not in tiers:
            raise ReportError("tier", f"{tier!r} is not one of {', '.join(tiers)}.")
    q = value("q")
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise ReportError("q", f"the search text is over {MAX_QUERY_CHARS} characters.")
    return LogFilters(period, outcome, sentiment, reason, staff_id, tier, q)


def parse_page(page: str | None, page_size: str | None) -> tuple[int, int]:
    def number(raw: str | None, field: str, default: int, top: int) -> int:
        if raw is None or not raw.strip():
            return default
        if not raw.strip().isdigit() or not 1 <= int(raw) <= top:
            raise ReportError(field, f"{raw!r} is not a whole number from 1 to {top}.")
        return int(raw)

    return number(page, "page", 1, 1_000_000), number(page_size, "page_size", 50, MAX_PAGE_SIZE)


# ------------------------------------------------------------------ personal data


class Masker:
    """Masks personal data in texts and customer labels when PII masking is on.

    The masking itself is tandem/privacy/masking.py (spaCy NER plus patterns).
    """

    def __init__(self, enabled: bool, vocabulary: Any = None) -> None:
        """`vocabulary`: the business's own words, never masked (a privacy Vocabulary)."""
        self.enabled = enabled
        self._mask: Any = None
        self._vocabulary: Any = vocabulary
        if enabled:
            from tandem.privacy.masking import NO_VOCABULARY, mask_text

            self._mask = mask_text
            self._vocabulary = vocabulary or NO_VOCABULARY

    def text(self, text: str, known_names: Iterable[str] = ()) -> str:
        if not self.enabled or not text:
            return text
        names = [n for n in known_names if n]
        return str(self._mask(text, known_names=names, vocabulary=self._vocabulary))

    def label(self, customer: Customer | None) -> str:
        if customer is None:
            return "Visitor"
        return self.text(customer.name, [customer.name]) if self.enabled else customer.name


# ------------------------------------------------------------------ one conversation


def customer_messages(conversation: Conversation) -> list[Message]:
    return [m for m in conversation.messages if m.sender == "customer"]


def _queued_or_escalated(event: ConversationEvent) -> bool:
    return event.kind == "escalation" or (
        event.kind == "state_changed" and event.to_state == State.QUEUED.value
    )


def outcome_of(conversation: Conversation) -> str:
    """bot, handed_off or ticket (see the module docstring)."""
    events = conversation.events
    if any(e.to_state == State.OFFLINE_TICKET.value for e in events if e.kind == "state_changed"):
        return "ticket"
    if any(_queued_or_escalated(e) for e in events):
        return "handed_off"
    return "bot"


def log_outcome(conversation: Conversation) -> str:
    outcome = outcome_of(conversation)
    if outcome == "handed_off" and conversation.state in (State.QUEUED, State.WITH_STAFF):
        return "open"
    return outcome


def sentiment_bucket(average: float | None) -> str | None:
    if average is None:
        return None
    if average <= NEGATIVE_AT:
        return "negative"
    if average >= POSITIVE_AT:
        return "positive"
    return "neutral"


def escalation_reasons(conversation: Conversation) -> tuple[list[str], list[str]]:
    """(trigger names, reason texts) over every escalation, first seen first."""
    names: list[str] = []
    texts: list[str] = []
    for event in conversation.events:
        if event.kind != "escalation":
            continue
        data = event.data or {}
        decision = data.get("decision") or {}
        for name in decision.get("triggers") or []:
            if name not in names:
                names.append(str(name))
        for text in data.get("reasons") or []:
            if text not in texts:
                texts.append(str(text))
    return names, texts


def staff_ids(conversation: Conversation) -> list[int]:
    """Everyone who held the conversation, in order (claims and transfers)."""
    found: list[int] = []
    for event in conversation.events:
        held: int | None = None
        if (
            event.kind == "state_changed"
            and event.to_state == State.WITH_STAFF.value
            and event.actor.startswith("staff:")
        ):
            suffix = event.actor.split(":", 1)[1]
            held = int(suffix) if suffix.isdigit() else None
        elif event.kind == "transferred":
            to = (event.data or {}).get("to_staff_id")
            held = int(to) if isinstance(to, int) else None
        if held is not None:
            if held in found:
                found.remove(held)
            found.append(held)
    return found


def last_claimed_name(conversation: Conversation) -> str | None:
    """The name recorded on the last claim, for claims with no account id behind them."""
    for event in reversed(conversation.events):
        if event.kind == "state_changed" and event.to_state == State.WITH_STAFF.value:
            return (event.data or {}).get("staff_name")
    return None


def _frustration(conversation: Conversation) -> float | None:
    if conversation.mood:
        from sentiment.mood import Mood

        return round(Mood.from_dict(conversation.mood).frustration, 4)
    # Returned to the bot (the mood was reset): the last escalation kept a copy.
    for event in reversed(conversation.events):
        mood = (event.data or {}).get("mood") if event.kind == "escalation" else None
        if isinstance(mood, dict) and mood.get("frustration") is not None:
            return float(mood["frustration"])
    return None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    conversation: Conversation,
    customer: Customer | None,
    staff_names: Mapping[int, str],
    masker: Masker,
) -> dict[str, Any]:
    """The log's view of one conversation (the `conversations[]` items of the API)."""
    scores = [
        m.sentiment_score for m in customer_messages(conversation) if m.sentiment_score is not None
    ]
    names, texts = escalation_reasons(conversation)
    held = staff_ids(conversation)
    staff = None
    if held:
        staff = {"id": held[-1], "name": staff_names.get(held[-1], f"staff #{held[-1]}")}
    elif name := last_claimed_name(conversation):
        staff = {"id": None, "name": name}  # no account behind it (the demo history)
    frustration = _frustration(conversation)
    average = sum(scores) / len(scores) if scores else None
    return {
        "id": conversation.id,
        "created_at": conversation.created_at.isoformat(),
        "state": conversation.state,
        "outcome": log_outcome(conversation),
        "customer": {
            "label": masker.label(customer),
            "tier": customer.tier if customer else None,
            "lifetime_value": float(customer.lifetime_value) if customer else None,
        },
        "staff": staff,
        "reasons": names,
        "reason_texts": texts,
        "avg_sentiment": _round(average),
        "min_sentiment": _round(min(scores)) if scores else None,
        "sentiment": sentiment_bucket(average),
        "mood": None if frustration is None else {"frustration": frustration},
        "csat": conversation.csat,
        "message_count": len(conversation.messages),
        "timeline": [round(s, 4) for s in scores],
    }


def known_names(conversation: Conversation, customer: Customer | None) -> list[str]:
    """Names to mask in this conversation's texts: the customer's and any ticket's."""
    names = [customer.name] if customer is not None else []
    names += [t.name for t in conversation.tickets if t.name]
    return names


def staff_names(session: Session) -> dict[int, str]:
    return {u.id: u.display_name for u in session.scalars(select(StaffUser))}


def customers_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Customer]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


# ------------------------------------------------------------------ reports


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _local(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz)


def build_report(session: Session, period: Period) -> dict[str, Any]:
    """Every figure of GET /api/owner/reports for the period."""
    lower, upper = period.bounds()
    tz = period.tz

    # Customer messages written in the period: sentiment, intents, hours.
    messages = list(
        session.scalars(
            select(Message).where(
                Message.sender == "customer",
                Message.created_at >= lower,
                Message.created_at < upper,
            )
        )
    )
    per_day: dict[date, list[float]] = defaultdict(list)
    hours = [0] * 24
    intents: Counter[str] = Counter()
    read_by_bot = fallbacks = 0
    for message in messages:
        local = _local(message.created_at, tz)
        hours[local.hour] += 1
        if message.sentiment_score is not None:
            per_day[local.date()].append(message.sentiment_score)
        if message.intent:
            read_by_bot += 1
            intents[message.intent] += 1
            fallbacks += message.intent in FALLBACK_INTENTS

    # Conversations started in the period: outcomes and CSAT.
    conversations = list(
        session.scalars(
            select(Conversation)
            .where(Conversation.created_at >= lower, Conversation.created_at < upper)
            .options(selectinload(Conversation.events))
        )
    )
    with_customer = set(
        session.scalars(
            select(Message.conversation_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Message.sender == "customer",
                Conversation.created_at >= lower,
                Conversation.created_at < upper,
            )
            .distinct()
        )
    )
    outcome_counts: Counter[str] = Counter()
    csat_scores: list[int] = []
    for conversation in conversations:
        if conversation.id in with_customer:
            outcome_counts[outcome_of(conversation)] += 1
        if conversation.csat is not None:
            csat_scores.append(conversation.csat)
    counted = sum(outcome_counts.values())

    # Escalations in the period, by trigger.
    escalations = list(
        session.scalars(
            select(ConversationEvent).where(
                ConversationEvent.kind == "escalation",
                ConversationEvent.created_at >= lower,
                ConversationEvent.created_at < upper,
            )
        )
    )
    by_reason: Counter[str] = Counter()
    for event in escalations:
        decision = (event.data or {}).get("decision") or {}
        for name in set(decision.get("triggers") or []):
            by_reason[str(name)] += 1

    waits = _waits_to_first_reply(session, lower, upper)
    return {
        "tickets": _tickets(session, lower, upper),
        "period": period.to_dict(),
        "timezone": str(tz),
        "sentiment_per_day": [
            {
                "day": day.isoformat(),
                "average": _round(sum(per_day[day]) / len(per_day[day])) if per_day[day] else None,
                "messages": len(per_day[day]),
            }
            for day in period.days()
        ],
        "outcomes": {
            **{
                name: {
                    "count": outcome_counts[name],
                    "share": outcome_counts[name] / counted if counted else 0.0,
                }
                for name in OUTCOMES
            },
            "total": counted,
        },
        "escalations_by_reason": [
            {"reason": name, "label": trigger_label(name), "count": count}
            for name, count in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
        ],
        "wait_to_first_reply": {
            "p50": _round(percentile(waits, 0.5), 1),
            "p90": _round(percentile(waits, 0.9), 1),
            "count": len(waits),
        },
        "csat": {
            "average": _round(sum(csat_scores) / len(csat_scores), 2) if csat_scores else None,
            "count": len(csat_scores),
            "distribution": {str(n): csat_scores.count(n) for n in range(1, 6)},
        },
        "top_intents": [
            {"intent": name, "count": count}
            for name, count in sorted(intents.items(), key=lambda item: (-item[1], item[0]))[:10]
        ],
        # Over the customer messages the bot read (those with an intent): messages held
        # for staff were never the bot's to understand.
        "fallback_rate": fallbacks / read_by_bot if read_by_bot else 0.0,
        "busiest_hours": [{"hour": hour, "messages": hours[hour]} for hour in range(24)],
    }


def _tickets(session: Session, lower: datetime, upper: datetime) -> dict[str, Any]:
    """Tickets filed in the period: counts, and seconds from filed to done (p50, p90)."""
    tickets = list(
        session.scalars(select(Ticket).where(Ticket.created_at >= lower, Ticket.created_at < upper))
    )
    resolved = [
        (t.resolved_at - t.created_at).total_seconds()
        for t in tickets
        if t.status == "done" and t.resolved_at is not None
    ]
    return {
        "count": len(tickets),
        "done": sum(t.status == "done" for t in tickets),
        "time_to_resolution": {
            "p50": _round(percentile(resolved, 0.5), 1),
            "p90": _round(percentile(resolved, 0.9), 1),
            "count": len(resolved),
        },
    }


def _waits_to_first_reply(session: Session, lower: datetime, upper: datetime) -> list[float]:
    """Seconds from each queueing in the period to the next staff message (notes excluded)."""
    queued = list(
        session.scalars(
            select(ConversationEvent)
            .where(
                ConversationEvent.kind == "state_changed",
                ConversationEvent.to_state == State.QUEUED.value,
                ConversationEvent.created_at >= lower,
                ConversationEvent.created_at < upper,
            )
            .order_by(ConversationEvent.id)
        )
    )
    if not queued:
        return []
    queued_in_period = (
        select(ConversationEvent.conversation_id)
        .where(
            ConversationEvent.kind == "state_changed",
            ConversationEvent.to_state == State.QUEUED.value,
            ConversationEvent.created_at >= lower,
            ConversationEvent.created_at < upper,
        )
        .scalar_subquery()
    )
    replies: dict[str, list[Message]] = defaultdict(list)
    for message in session.scalars(
        select(Message)
        .where(
            Message.conversation_id.in_(queued_in_period),
            Message.sender == "staff",
            Message.status != "internal",
        )
        .order_by(Message.id)
    ):
        replies[message.conversation_id].append(message)
    waits: list[float] = []
    for event in queued:
        first = next(
            (m for m in replies[event.conversation_id] if m.created_at >= event.created_at), None
        )
        if first is not None:
            waits.append((first.created_at - event.created_at).total_seconds())
    return waits
