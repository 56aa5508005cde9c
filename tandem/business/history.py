"""A demo conversation history, so a fresh install's dashboards have something to show.

The conversations are scripted in `data/demo/history.yml` and stored through the real
conversation service, the same calls the gateway makes: every customer turn goes
through the gateway's own per-turn step (`handoff.turn.decide_turn`), every state
change is one of the named moves of `tandem.conversations.transitions`, tickets are
real ticket rows. Only the clock is scripted: the rows
are back-dated to believable moments inside the shop's opening hours over the last days.

Everything is recognisable as demo data: the conversations' channel is `demo` and every
message's payload has `"demo": true`. Seeding is deterministic (a fixed random seed) and
idempotent: nothing happens when any conversation exists.

    python -m tandem.business.history [--days 28] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handoff.policy import Decision, PolicySettings, load_policy
from handoff.signals import PERSON_PAYLOAD, HandoffSignal, to_custom
from handoff.turn import ACTION_REASONS
from tandem.business.models import Order, Product
from tandem.business.profile import BusinessProfile, get_profile
from tandem.config import PROJECT_ROOT, get_settings
from tandem.conversations import service, transitions
from tandem.conversations.facts import decide_stored_turn
from tandem.conversations.models import Conversation, Message
from tandem.staff.models import StaffUser

DEFAULT = PROJECT_ROOT / "data" / "demo" / "history.yml"
CHANNEL = "demo"
DEMO = {"demo": True}
T = TypeVar("T")
Track = Callable[[Iterable[T], str], Iterable[T]]

_STATUS_TEXT = {
    "pending": "received and waiting to be packed",
    "processing": "being packed and will ship within a day",
    "shipped": "on its way with {carrier}",
    "out_for_delivery": "out for delivery today",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "returned": "returned and refunded",
}
_ORDER_NUMBER = re.compile(r"\b\d{5}\b")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# Room left before closing for the longest scripted conversation.
_LONGEST_CHAT = timedelta(minutes=25)


class HistoryFileError(ValueError):
    """history.yml is missing or invalid; the message names the file and the problem."""


# ------------------------------------------------------------------ the file


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


Probabilities = tuple[float, float, float]  # negative, neutral, positive


class Turn(_Model):
    customer: str
    intent: str
    confidence: float = Field(ge=0, le=1)
    s: Probabilities
    bot: str | None = None
    say: str | None = None  # a business.yml message key instead of `bot`
    escalate: Literal["request_human", "complaint", "policy"] | None = None
    identify: str | None = None  # how the customer was verified (order_lookup...)

    @model_validator(mode="after")
    def _one_reply(self) -> Turn:
        if (self.bot is None) == (self.say is None):
            raise ValueError("a turn needs exactly one of `bot` or `say`")
        return self


class StaffTurn(_Model):
    staff: str | None = None
    customer: str | None = None
    s: Probabilities | None = None

    @model_validator(mode="after")
    def _one_side(self) -> StaffTurn:
        if (self.staff is None) == (self.customer is None):
            raise ValueError("a staff turn needs exactly one of `staff` or `customer`")
        if self.customer is not None and self.s is None:
            raise ValueError("a customer message needs its sentiment `s`")
        return self


class Template(_Model):
    id: str
    outcome: Literal["bot", "handed_off", "ticket"]
    weight: int = Field(1, ge=1)
    customer: Literal["none", "order"] = "none"
    order_status: list[str] | None = None
    order_total: tuple[float, float] | None = None
    customer_tier: list[str] | None = None
    product: str | None = None
    turns: list[Turn] = Field(min_length=1)
    staff_turns: list[StaffTurn] = Field(default_factory=list)
    resolution: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Template:
        escalating = [i for i, t in enumerate(self.turns) if t.escalate]
        if self.outcome == "bot" and escalating:
            raise ValueError("a bot conversation cannot escalate")
        if self.outcome != "bot" and escalating != [len(self.turns) - 1]:
            raise ValueError("a handoff escalates on its last bot turn, once")
        if self.outcome != "bot" and not self.resolution:
            raise ValueError("a handoff needs a `resolution`")
        if self.outcome == "handed_off" and not any(t.staff for t in self.staff_turns):
            raise ValueError("a handoff needs at least one staff reply")
        return self


class Csat(_Model):
    asked: float = Field(ge=0, le=1)
    scores: dict[int, int]
    comments: dict[int, list[str]] = Field(default_factory=dict)


class PerDay(_Model):
    weekday: tuple[int, int]
    weekend: tuple[int, int]


class HistoryFile(_Model):
    seed: int
    per_day: PerDay
    hour_weights: dict[int, int] = Field(default_factory=dict)
    outcomes: dict[Literal["bot", "handed_off", "ticket"], int]
    staff_names: list[str] = Field(min_length=1)
    visitor_names: list[str] = Field(min_length=1)
    sizes: list[str] = Field(min_length=1)
    csat: Csat
    templates: list[Template] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_outcome(self) -> HistoryFile:
        for outcome, weight in self.outcomes.items():
            if weight and not any(t.outcome == outcome for t in self.templates):
                raise ValueError(f"no template for the outcome {outcome!r}")
        return self


def load_history(path: Path | str = DEFAULT) -> HistoryFile:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return HistoryFile.model_validate(data)
    except OSError as error:
        raise HistoryFileError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise HistoryFileError(f"{path}: not valid YAML ({error})") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise HistoryFileError(f"{path}: {problems}") from None


# ------------------------------------------------------------------ who and what


@dataclass(frozen=True)
class StaffMember:
    id: int | None  # None: a demo name, no account behind it
    name: str

    @property
    def actor(self) -> str:
        if self.id is not None:
            return f"staff:{self.id}"
        return f"staff:demo-{self.name.lower()}"[:40]

    @property
    def label(self) -> str:
        return self.name if self.id is not None else f"{self.name} (demo)"

    @property
    def display_name(self) -> str:
        return self.label

    @property
    def is_owner(self) -> bool:
        return False


@dataclass
class _Cast:
    """Demo rows the templates pick from, read once."""

    orders: list[Order]
    products: list[Product]
    staff: list[StaffMember]

    @classmethod
    def read(cls, session: Session, history: HistoryFile) -> _Cast:
        orders = list(session.scalars(select(Order).order_by(Order.number)))
        products = list(session.scalars(select(Product).order_by(Product.sku)))
        users = session.scalars(
            select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.id)
        ).all()
        staff = [StaffMember(u.id, u.display_name) for u in users] or [
            StaffMember(None, name) for name in history.staff_names
        ]
        return cls(orders, products, staff)

    def orders_for(self, template: Template) -> list[Order]:
        found = []
        for order in self.orders:
            if template.order_status and order.status not in template.order_status:
                continue
            if template.order_total and not (
                template.order_total[0] <= float(order.total) <= template.order_total[1]
            ):
                continue
            if template.customer_tier and order.customer.tier not in template.customer_tier:
                continue
            found.append(order)
        return found


def _fill(text: str, values: dict[str, str], template: Template) -> str:
    try:
        return text.format_map(values)
    except (KeyError, ValueError) as error:
        raise HistoryFileError(f"template {template.id}: bad placeholder in {text!r}") from error


def _entities(text: str) -> list[dict[str, Any]]:
    found = [
        {"entity": "order_number", "value": m.group(0), "start": m.start(), "end": m.end()}
        for m in _ORDER_NUMBER.finditer(text)
    ] + [
        {"entity": "email", "value": m.group(0), "start": m.start(), "end": m.end()}
        for m in _EMAIL.finditer(text)
    ]
    return [e | {"extractor": "DIETClassifier"} for e in found]


# ------------------------------------------------------------------ planning


@dataclass
class _Plan:
    start: datetime
    template: Template
    order: Order | None
    values: dict[str, str]
    staff: StaffMember
    rng: random.Random


def _day_count(rng: random.Random, history: HistoryFile, day: date) -> int:
    low, high = history.per_day.weekend if day.weekday() >= 5 else history.per_day.weekday
    return rng.randint(low, high)


def _start_times(
    rng: random.Random, history: HistoryFile, profile: BusinessProfile, now: datetime, days: int
) -> list[datetime]:
    today = profile.local_now(now).date()
    starts: list[datetime] = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        interval = profile.opening_interval(day)
        count = _day_count(rng, history, day)
        if interval is None:
            continue
        opens, closes = interval
        latest = min(closes - _LONGEST_CHAT, now.astimezone(profile.tz) - _LONGEST_CHAT)
        hours = [h for h in range(opens.hour, closes.hour + 1)]
        weights = [history.hour_weights.get(h, 1) for h in hours]
        for _ in range(count):
            for _attempt in range(20):
                hour = rng.choices(hours, weights)[0]
                moment = datetime.combine(day, time(hour), profile.tz) + timedelta(
                    seconds=rng.randint(0, 3599)
                )
                if opens <= moment <= latest:
                    starts.append(moment)
                    break
    return sorted(starts)


def _deal(rng: random.Random, outcomes: list[str], history: HistoryFile, count: int) -> list[str]:
    """Outcomes in the file's proportions (largest remainder), in a shuffled order."""
    total = sum(history.outcomes[o] for o in outcomes)
    exact = {o: count * history.outcomes[o] / total for o in outcomes}
    shares = {o: int(exact[o]) for o in outcomes}
    by_remainder = sorted(outcomes, key=lambda o: exact[o] - shares[o], reverse=True)
    for outcome in by_remainder[: count - sum(shares.values())]:
        shares[outcome] += 1
    dealt = [o for o in outcomes for _ in range(shares[o])]
    rng.shuffle(dealt)
    return dealt


def _plan(
    rng: random.Random,
    history: HistoryFile,
    cast: _Cast,
    profile: BusinessProfile,
    starts: list[datetime],
) -> list[_Plan]:
    by_outcome: dict[str, list[tuple[Template, list[Order]]]] = {}
    for template in history.templates:
        orders = cast.orders_for(template) if template.customer == "order" else []
        if template.customer == "order" and not orders:
            continue  # no matching demo order (business data not seeded): skip it
        by_outcome.setdefault(template.outcome, []).append((template, orders))
    outcomes = [o for o in history.outcomes if by_outcome.get(o) and history.outcomes[o]]
    plans = []
    for start, outcome in zip(starts, _deal(rng, outcomes, history, len(starts)), strict=True):
        candidates = by_outcome[outcome]
        template, orders = rng.choices(candidates, [t.weight for t, _ in candidates])[0]
        order = rng.choice(orders) if orders else None
        product = None
        if template.product:
            product = next((p for p in cast.products if p.name == template.product), None)
        if product is None and cast.products:
            product = rng.choice(cast.products)
        visitor = rng.choice(history.visitor_names)
        name = order.customer.name if order is not None else visitor
        first = name.split()[0]
        email = (
            order.customer.email
            if order is not None
            else f"{first.lower()}.{name.split()[-1][0].lower()}@example.net"
        )
        carrier = (order.carrier if order is not None else None) or "the carrier"
        values = {
            "name": name,
            "first_name": first,
            "email": email,
            "order": order.number if order is not None else "10000",
            "order_total": profile.money(order.total) if order is not None else "",
            "order_status_text": _STATUS_TEXT.get(order.status, order.status).format(
                carrier=carrier
            )
            if order is not None
            else "",
            "carrier": carrier,
            "product": product.name if product is not None else template.product or "dress",
            "price": profile.money(product.price) if product is not None else "",
            "size": rng.choice(history.sizes),
            "day": rng.choice(["tomorrow", "on Saturday", "on Friday", "this Sunday"]),
        }
        staff = cast.staff[rng.randrange(len(cast.staff))]
        plans.append(_Plan(start, template, order, values, staff, random.Random(rng.random())))
    return plans


# ------------------------------------------------------------------ writing one conversation


@dataclass
class _Writer:
    """Stores one scripted conversation through the conversation service, back-dated."""

    session: Session
    profile: BusinessProfile
    policy: PolicySettings
    history: HistoryFile
    plan: _Plan
    now: datetime  # nothing is dated after it
    at: datetime = field(init=False)
    conversation: Conversation = field(init=False)

    def __post_init__(self) -> None:
        self.replies: list[str] = []
        self.at = self.plan.start
        self.rng: random.Random = self.plan.rng

    def later(self, low: float, high: float) -> datetime:
        self.at += timedelta(seconds=self.rng.uniform(low, high))
        return self.at

    def text(self, raw: str) -> str:
        return _fill(raw, self.plan.values, self.plan.template)

    def message(
        self,
        sender: str,
        text: str,
        payload: dict[str, Any] | None = None,
        *,
        status: str = "received",
        s: Probabilities | None = None,
    ) -> Message:
        message, _ = service.add_message(
            self.session,
            self.conversation,
            sender=sender,
            text=text,
            payload=(payload or {}) | DEMO,
            status=status,
        )
        message.created_at = self.at
        if s is not None:
            negative, neutral, positive = s
            message.sentiment_negative = negative
            message.sentiment_neutral = neutral
            message.sentiment_positive = positive
            message.sentiment_score = round(positive - negative, 4)
        return message

    # -------------------------------------------------------------- the script

    def write(self) -> Conversation:
        template = self.plan.template
        self.conversation = service.create_conversation(self.session, channel=CHANNEL)
        self.conversation.created_at = self.at
        for event in self.conversation.events:
            event.created_at = self.at
        decision: Decision | None = None
        self.later(4, 25)
        for index, turn in enumerate(template.turns):
            if index:
                self.later(8, 45)
            decision = self.bot_turn(turn)
        assert decision is not None
        if template.outcome == "handed_off":
            self.queue(decision)
            self.with_staff()
        elif template.outcome == "ticket":
            self.ticket(decision)
        self.conversation.updated_at = self.at
        self.session.flush()
        return self.conversation

    def bot_turn(self, turn: Turn) -> Decision:
        text = self.text(turn.customer)
        message = self.message("customer", text, status="answered", s=turn.s)
        service.record_nlu(
            message,
            {
                "intent": {"name": turn.intent, "confidence": turn.confidence},
                "entities": _entities(text),
            },
        )
        self.later(1, 3)
        reply = self.text(turn.bot) if turn.bot is not None else self.profile.say(turn.say or "")
        payload: dict[str, Any] = {}
        if turn.escalate in ACTION_REASONS:
            # The action's handoff signal, as the Rasa actions send it.
            payload = to_custom(HandoffSignal(reason=turn.escalate, text=reply))
        elif turn.intent in self.policy.triggers.fallbacks.intents:
            payload["buttons"] = [{"title": "Talk to a person", "payload": PERSON_PAYLOAD}]
        self.message("bot", reply, payload)
        self.replies = [reply]
        if turn.identify and self.plan.order is not None:
            service.mark_identified(
                self.session,
                self.conversation,
                customer_id=self.plan.order.customer_id,
                via=turn.identify,
                at=self.at,
            )
        return self.assess(message, turn)

    def assess(self, message: Message, turn: Turn) -> Decision:
        """The gateway's own per-turn step (handoff.turn.decide_turn) on the stored turn.

        A scripted escalation the policy does not make (an action asked for a person, or
        the owner's handoff.yml no longer fires) goes in as the action's handoff request.
        """
        self.session.flush()
        return decide_stored_turn(
            self.session,
            self.conversation,
            message,
            self.policy,
            handoff_request=turn.escalate,
            bot_texts=self.replies,
        )

    def queue(self, decision: Decision) -> None:
        """The desk's escalate: queued, with the position message."""
        self.later(0.2, 0.8)
        transitions.escalate(
            self.session, self.conversation, decision, actor="policy", at=self.at
        )
        position = 1 if self.rng.random() < 0.75 else 2
        wait = self.rng.choice([45, 90, 120, 180])
        wait_text = (
            self.profile.say("wait_under_a_minute")
            if wait < 60
            else self.profile.say("wait_minutes", minutes=-(-wait // 60))
        )
        self.message(
            "system",
            self.profile.say("handoff_queued", position=position, wait=wait_text),
            {"kind": "queue_position", "position": position, "wait_seconds": wait},
        )

    def with_staff(self) -> None:
        """Claimed after a realistic wait, answered, closed, usually rated."""
        staff = self.plan.staff
        self.later(20, 300)
        transitions.claim(self.session, self.conversation, staff, self.profile, at=self.at)
        self._demo_payloads()
        claimed_at = self.at
        values = self.plan.values | {"staff_name": staff.name}
        first = True
        for step in self.plan.template.staff_turns:
            if step.staff is not None:
                if first:
                    self.later(10, 45)  # the first reply: the wait the reports measure
                else:
                    self.later(20, 75)
                first = False
                payload: dict[str, Any] = {"staff_name": staff.label}
                if staff.id is not None:
                    payload["staff_id"] = staff.id
                self.message("staff", _fill(step.staff, values, self.plan.template), payload)
            else:
                self.later(15, 60)
                # Held for the person (no intent), scored like every customer message.
                self.message("customer", self.text(step.customer or ""), status="held", s=step.s)
        self.later(30, 120)
        self.close(staff, handle_seconds=round((self.at - claimed_at).total_seconds(), 3))
        self.rate()

    def close(self, staff: StaffMember, *, handle_seconds: float | None) -> None:
        """The desk's close: closed with the resolution, tickets resolved, CSAT asked."""
        transitions.close(
            self.session,
            self.conversation,
            staff,
            self.plan.template.resolution or "",
            self.profile,
            at=self.at,
            handled=handle_seconds,
        )
        self._demo_payloads()

    def _demo_payloads(self) -> None:
        """Mark what a transition wrote as demo data, like every other demo row."""
        for message in service.list_messages(self.session, self.conversation.id):
            if message.payload is None or "demo" not in message.payload:
                message.payload = (message.payload or {}) | DEMO

    def rate(self) -> None:
        """POST /conversations/{id}/csat, most of the time."""
        csat = self.history.csat
        if self.rng.random() >= csat.asked:
            return
        scores = sorted(csat.scores)
        score = self.rng.choices(scores, [csat.scores[s] for s in scores])[0]
        comments = csat.comments.get(score) or []
        comment = self.rng.choice(comments) if comments and self.rng.random() < 0.4 else None
        self.later(8, 50)
        self.conversation.csat = score
        self.conversation.csat_comment = comment
        service.record_event(
            self.session,
            self.conversation,
            kind="csat",
            actor="customer",
            reason=f"rated {score}/5",
            data={"score": score, "comment": comment},
            at=self.at,
        )

    def ticket(self, decision: Decision) -> None:
        """Nobody online: the desk's offline path, then the contact form (offline_step)."""
        why = self.profile.say("handoff_offline_no_staff")
        self.later(0.2, 0.8)
        _, ticket = transitions.file_ticket(
            self.session,
            self.conversation,
            decision,
            self.profile,
            why=why,
            reply_by=None,
            actor="policy",
            at=self.at,
        )
        self._demo_payloads()
        contact = {"kind": "offline_contact", "ticket_id": ticket.id}
        state = service.load_handoff(self.conversation)

        name = self.plan.values["name"]
        self.later(10, 30)
        said = self.message("customer", f"It's {name}", status="held", s=(0.02, 0.95, 0.03))
        ticket.message_ids = [*ticket.message_ids, said.id]
        ticket.name = name
        state.offline_step = "contact"
        self.later(1, 2)
        self.message("bot", self.profile.say("handoff_offline_ask_contact", name=name), contact)

        email = self.plan.values["email"]
        self.later(10, 30)
        said = self.message("customer", email, status="held", s=(0.02, 0.96, 0.02))
        ticket.message_ids = [*ticket.message_ids, said.id]
        ticket.email, ticket.status = email, "open"
        ticket.updated_at = self.at
        state.offline_step = "done"
        service.save_handoff(self.conversation, state)
        service.record_event(
            self.session,
            self.conversation,
            kind="ticket_opened",
            actor="customer",
            reason=f"ticket #{ticket.id}",
            data={"ticket_id": ticket.id, "message_ids": ticket.message_ids},
            at=self.at,
        )
        self.later(1, 2)
        self.message(
            "bot",
            self.profile.say(
                "handoff_offline_ticket",
                name=name,
                ticket=ticket.id,
                contact=email,
                when=self.profile.say("handoff_reply_soon"),
            ),
            contact,
        )
        # Older tickets were answered (by e-mail) and closed; recent ones are still open.
        if self.rng.random() < 0.6:
            self.later(900, 5400)
            opening = self.profile.opening_interval(self.at.astimezone(self.profile.tz).date())
            if opening is not None and self.at < opening[1] and self.at < self.now:
                self.close(self.plan.staff, handle_seconds=None)


# ------------------------------------------------------------------ the entry point


def _no_progress(rows: Iterable[T], _label: str) -> Iterable[T]:
    return rows


def has_conversations(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(Conversation)) or 0) > 0


def seed_history(
    session: Session,
    *,
    now: datetime,
    days: int = 28,
    path: Path | str = DEFAULT,
    profile: BusinessProfile | None = None,
    policy: PolicySettings | None = None,
    track: Track = _no_progress,  # type: ignore[assignment]
) -> int:
    """Store the demo history of the last `days` days; returns how many conversations.

    A no-op (0) when any conversation exists. HistoryFileError for a bad history file.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if has_conversations(session):
        return 0
    history = load_history(path)
    profile = profile or get_profile()
    if policy is None:
        policy = load_policy(get_settings().handoff_file)
    rng = random.Random(history.seed)
    cast = _Cast.read(session, history)
    starts = _start_times(rng, history, profile, now, days)
    plans = _plan(rng, history, cast, profile, starts)
    created = 0
    for plan in track(plans, "conversations"):
        _Writer(session, profile, policy, history, plan, now).write()
        created += 1
    session.flush()
    return created


def check_templates(
    session: Session, path: Path | str = DEFAULT, policy: PolicySettings | None = None
) -> list[str]:
    """Where the scripts and the handoff policy disagree (for the tests and for editors).

    The policy must escalate exactly on a `policy` turn, and never on a turn the script
    keeps with the bot (an action's request_human/complaint escalates regardless). Runs
    on a database with the demo business, inside a savepoint that is rolled back.
    """
    history = load_history(path)
    policy = policy or load_policy(get_settings().handoff_file)
    profile = get_profile()
    cast = _Cast.read(session, history)
    problems = []
    nested = session.begin_nested()
    try:
        for template in history.templates:
            orders = cast.orders_for(template)
            order = orders[0] if template.customer == "order" and orders else None
            if template.customer == "order" and order is None:
                problems.append(f"{template.id}: no demo order matches")
                continue
            plan = _Plan(
                datetime(2026, 3, 4, 17, tzinfo=profile.tz),
                template,
                order,
                _sample_values(order, profile),
                StaffMember(None, history.staff_names[0]),
                random.Random(1),
            )
            writer = _Writer(session, profile, policy, history, plan, plan.start)
            writer.conversation = service.create_conversation(session, channel=CHANNEL)
            for number, turn in enumerate(template.turns, start=1):
                decision = writer.bot_turn(turn)
                fired = evaluate_only(decision, turn)
                if turn.escalate == "policy" and not fired:
                    problems.append(f"{template.id} turn {number}: the policy does not escalate")
                if turn.escalate is None and fired:
                    problems.append(
                        f"{template.id} turn {number}: the policy escalates ({decision.summary})"
                    )
    finally:
        nested.rollback()
    return problems


def evaluate_only(decision: Decision, turn: Turn) -> bool:
    """Did the policy itself (not a forced action handoff) escalate?"""
    forced = turn.escalate is not None and decision.triggers[-1:] == [turn.escalate]
    return decision.escalate and not forced


def _sample_values(order: Order | None, profile: BusinessProfile) -> dict[str, str]:
    name = order.customer.name if order is not None else "Pat Demo"
    return {
        "name": name,
        "first_name": name.split()[0],
        "email": order.customer.email if order is not None else "pat@example.net",
        "order": order.number if order is not None else "10000",
        "order_total": profile.money(order.total) if order is not None else "",
        "order_status_text": order.status if order is not None else "",
        "carrier": "UPS",
        "product": "Wool Blend Peacoat",
        "price": "$298.00",
        "size": "M",
        "day": "tomorrow",
    }


# ------------------------------------------------------------------ CLI


def _rich_track(rows: Iterable[T], label: str) -> Iterator[T]:
    from rich.progress import track

    materialised = list(rows)
    yield from track(materialised, description=f"Seeding {label}", total=len(materialised))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.business.history",
        description="Load a demo conversation history (once) so the reports have data.",
    )
    parser.add_argument("--days", type=int, default=28, help="how many days back (1-366)")
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    parser.add_argument("--path", type=Path, default=DEFAULT, help="the history file")
    args = parser.parse_args(argv)
    if not 1 <= args.days <= 366:
        parser.error(f"--days must be from 1 to 366, not {args.days}")

    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from tandem.business.seed import seed_demo
    from tandem.db import get_engine, migrate, session_scope, utcnow

    try:
        load_history(args.path)  # a broken file is reported before the database is touched
        engine = get_engine(args.database_url)
        migrate(args.database_url)
        with session_scope(engine) as session:
            # The history talks about the demo shop's customers and orders.
            seed_demo(session)
            existed = has_conversations(session)
            created = seed_history(
                session, now=utcnow(), days=args.days, path=args.path, track=_rich_track
            )
    except HistoryFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ArgumentError, SQLAlchemyError) as error:
        print(f"error: the database: {error}", file=sys.stderr)
        return 2
    if existed:
        print("Conversations already exist; nothing done.")
    elif created == 0:
        print(f"The shop was not open in the last {args.days} days; nothing to store.")
    else:
        print(f"Stored {created} demo conversations over the last {args.days} days.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
