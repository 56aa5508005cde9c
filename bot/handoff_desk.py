"""The gateway's handoff desk: policy signals, escalation, the queue and staff actions.

`ChatFlows` (bot/flows.py) calls in after each customer turn; the staff API
(bot/staff_views.py) calls the staff actions. This module wires the handoff library
(policy, queue), the sentiment Mood, storage and the bus together; it has no HTTP code.

Bus events:
- conversation topic (the customer's widget): `message` frames, and `queue` frames with
  the position and expected wait whenever the queue changes (not stored);
- the `staff` topic (/ws/staff): `escalation`, `queue_changed`, `customer_message`,
  `staff_message`, `note`, `ticket`, `sla_overdue`.

State lives in the database and the queue; events only say "look again" (at most once).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from bot.rasa_client import RasaClient
from bot.serializers import message_view
from handoff.policy import (
    CustomerValue,
    Decision,
    PolicySettings,
    Reason,
    Signals,
    evaluate,
    update_fallback_streak,
    update_intent_streak,
    update_negative_streak,
    value_boost,
)
from handoff.queue import HandoffQueue, QueueEntry
from sentiment.analyzer import SentimentScores
from sentiment.mood import Mood
from tandem.bus import EventBus, conversation_topic
from tandem.business.models import Customer, Order, OrderStatus
from tandem.business.profile import BusinessProfile
from tandem.business.service import normalise_email, normalise_order_number, normalise_phone
from tandem.conversations import service
from tandem.conversations.models import Conversation, ConversationEvent, Message, Ticket
from tandem.conversations.states import State
from tandem.db import session_scope, utcnow
from tandem.staff.models import StaffUser

logger = logging.getLogger(__name__)

STAFF_TOPIC = "staff"
# Intents that carry no request of their own: the summary and the task tracking skip them.
_FILLER_INTENTS = frozenset(
    {"greet", "goodbye", "thanks", "affirm", "deny", "inform", "stop", "bot_challenge"}
)
# A form answer keeps the task it answers (an order number given for cancel_order).
_ANSWER_INTENTS = frozenset({"inform", "affirm", "deny"})
_OPEN_ORDER_STATES = frozenset(
    {OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY}
)
_HANDOFF_REASONS = {
    "request_human": Reason("asked_for_person", "asked for a person", "request_human"),
    "complaint": Reason("complaint", "customer is making a complaint", "complaint"),
}


class DeskError(Exception):
    """A staff action that cannot be done; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class StaffRef:
    """Who acts (copied from the logged-in staff member)."""

    id: int
    display_name: str
    role: str
    capacity: int

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"

    @property
    def queue_id(self) -> str:
        return str(self.id)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


@dataclass(frozen=True)
class OfflineStep:
    """What the offline contact flow did with a customer message (see offline_step)."""

    replies: list[dict[str, Any]] = field(default_factory=list)
    forward: bool = False  # the ticket is complete: the bot has the conversation again
    answer_first: bool = False  # not an answer to the form: the bot answers it first


# ------------------------------------------------------------------ the contact form's answers

_NAME_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|sure|ok|okay|yes)\b[\s,!.]*)?"
    r"(?:it'?s|it is|i'?m|i am|this is|my name is|my name'?s|name'?s|name is|call me)\s+",
    re.IGNORECASE,
)
# Letters (any script), then letters, spaces, hyphens and apostrophes.
_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '’-])*")
_NAME_MAX_CHARS = 80
_NAME_MAX_WORDS = 5
# A message starting with one of these is a question or a request, not a name.
_NOT_NAME_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who whom whose which can could do does did is are was were
    will would should shall may might have has had i we you my our your the a an this that
    there please tell show give send need want help track cancel return change book find
    check where's what's how's when's who's don't dont not no yes ok okay hi hello hey
    thanks thank sure yeah yep nope any anything something""",
    )
)
# Words that name things a shop is asked about, never people.
_NOT_NAME_WORDS = frozenset(
    re.findall(
        r"\S+",
        """order orders refund refunds return returns price prices cost costs much many hours
    open opening closed delivery shipping size sizes stock appointment booking blazer dress
    shirt jacket coat shoes item items help question person human agent staff manager""",
    )
)
_OPT_OUT = re.compile(
    r"^(?:no,?\s*thanks?|no thank you|nope|no|cancel|stop|skip|never ?mind|forget it|"
    r"i'?d rather not|rather not|not now|leave it)[\s.!]*$",
    re.IGNORECASE,
)
_EMAIL_TOKEN = re.compile(r"\S*@\S*")
_EMAIL_VALID = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# Where an address is expected, only a clear question or request goes to the bot.
_QUESTION_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who which can could do does did is are will would should
        may please tell show give send track cancel return change book find check where's
        what's how's when's who's""",
    )
)


def is_opt_out(text: str) -> bool:
    """The customer leaves the contact form: "no thanks", "cancel", "never mind"."""
    return bool(_OPT_OUT.match(text.strip().replace("’", "'")))


def looks_like_question(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower().replace("’", "'"))
    return "?" in text or (bool(words) and words[0] in _QUESTION_START)


def parse_name(text: str) -> str | None:
    """The customer's name from "Marcus Reed" or "it's Ana"; None for anything else.

    A name is letters, spaces, hyphens and apostrophes, at most 80 characters and five
    words; a question ("how much is the blazer"), a request or small talk is not one.
    """
    cleaned = text.strip().replace("’", "'").rstrip(".!")
    if "?" in cleaned:
        return None
    cleaned = _NAME_LEAD_IN.sub("", cleaned, count=1).strip()
    cleaned = re.sub(r"\s+", " ", cleaned)
    if not cleaned or len(cleaned) > _NAME_MAX_CHARS or not _NAME.fullmatch(cleaned):
        return None
    words = cleaned.lower().split()
    if len(words) > _NAME_MAX_WORDS or sum(c.isalpha() for c in cleaned) < 2:
        return None
    if words[0] in _NOT_NAME_START or any(w in _NOT_NAME_WORDS for w in words):
        return None
    return cleaned


def find_email(text: str) -> tuple[str | None, str | None]:
    """(a valid e-mail address, None), (None, what was typed as a broken one) or (None, None)."""
    token = _EMAIL_TOKEN.search(text)
    if token is None:
        return None, None
    candidate = token.group(0).strip("<>()[]\"',;:.!?")
    if _EMAIL_VALID.match(candidate):
        return normalise_email(candidate), None
    return None, candidate[:80]


# ------------------------------------------------------------------ per-turn bookkeeping


def handoff_data(conversation: Conversation) -> dict[str, Any]:
    return dict(conversation.handoff or {})


def record_sentiment(message: Message, scores: SentimentScores | None) -> None:
    if scores is None:
        return
    message.sentiment_negative = float(scores.negative)
    message.sentiment_neutral = float(scores.neutral)
    message.sentiment_positive = float(scores.positive)
    message.sentiment_score = float(scores.score)


_DATA = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+|[#+(]?\d[\d\s().-]*")
_WORD = re.compile(r"[^\W\d_]{2,}")


def carries_mood(message: Message) -> bool:
    """False for a bare answer to a form ("10482", "jane@example.com", "yes").

    The model's score is still stored on such a message, but an order number or an
    e-mail address says nothing about how the customer feels, so the Mood and the
    negative streak do not count it.
    """
    text = message.text
    for entity in sorted(message.entities or [], key=lambda e: -(e.get("start") or 0)):
        start, end = entity.get("start"), entity.get("end")
        if isinstance(start, int) and isinstance(end, int):
            text = text[:start] + " " + text[end:]
    return len(_WORD.findall(_DATA.sub(" ", text))) >= 2


def mood_scores(message: Message, scores: SentimentScores | None) -> SentimentScores | None:
    return scores if carries_mood(message) else None


def update_mood(
    conversation: Conversation,
    message: Message,
    scores: SentimentScores | None,
    *,
    fallback: bool | None,
) -> Mood:
    """Fold one customer message (and the bot's answer, when there was one) into the Mood."""
    mood = Mood.from_dict(conversation.mood or {})
    mood.add_customer_message(message.text, mood_scores(message, scores))
    if fallback is True:
        mood.bot_fallback()
    elif fallback is False:
        mood.bot_answered()
    conversation.mood = mood.to_dict()
    return mood


def fold_late_score(
    conversation: Conversation,
    message: Message,
    scores: SentimentScores | None,
    later_turns: int,
    policy: PolicySettings,
) -> None:
    """A score that came after its turn (the model was loading): correct the Mood.

    The turn counted as neutral; the Mood's average is linear in the scores, so the
    difference is added with the weight it has now, `later_turns` customer messages on.
    """
    if scores is None or not carries_mood(message) or not conversation.mood:
        return
    mood = Mood.from_dict(conversation.mood)
    if later_turns >= mood.customer_turns:
        return  # the Mood was reset since (returned to the bot)
    score = float(scores.score)
    alpha = mood.settings.ema_alpha
    first = mood.customer_turns - 1 - later_turns == 0
    if mood.ema is not None:
        mood.ema += (1 - alpha) ** later_turns * (1.0 if first else alpha) * score
    if later_turns < len(mood.scores):
        mood.scores[len(mood.scores) - 1 - later_turns] = score
    mood.peak = max(mood.peak, mood.frustration)
    conversation.mood = mood.to_dict()
    if later_turns == 0:
        data = handoff_data(conversation)
        data["negative_streak"] = update_negative_streak(
            int(data.get("negative_streak", 0)), score, policy
        )
        conversation.handoff = data


def customer_value(session: Session, conversation: Conversation) -> CustomerValue | None:
    """The customer's worth for routing, only when their identity is verified."""
    if conversation.customer_id is None or not conversation.customer_verified:
        return None
    customer = session.get(Customer, conversation.customer_id)
    if customer is None:
        return None
    open_total = session.scalars(
        select(Order.total).where(
            Order.customer_id == customer.id,
            Order.status.in_([s.value for s in _OPEN_ORDER_STATES]),
        )
    ).all()
    return CustomerValue(
        verified=True,
        tier=customer.tier,
        lifetime_value=float(customer.lifetime_value),
        open_order_value=float(max(open_total)) if open_total else None,
    )


def _order_value(session: Session, message: Message) -> float | None:
    for entity in message.entities or []:
        if entity.get("entity") == "order_number":
            number = normalise_order_number(str(entity.get("value") or ""))
            if number:
                total = session.scalar(select(Order.total).where(Order.number == number))
                if total is not None:
                    return float(total)
    return None


def assess_turn(
    session: Session,
    conversation: Conversation,
    message: Message,
    mood: Mood,
    policy: PolicySettings,
    *,
    fallback_intents: frozenset[str],
    handoff_trigger: str | None = None,
) -> Decision:
    """Update the streaks, build the policy's Signals for this message and evaluate them.

    `handoff_trigger` is set when an action asked for a person (request_human, complaint):
    that always escalates, with the policy's reasons when it found some.
    """
    data = handoff_data(conversation)
    intent = message.intent
    felt = message.sentiment_score if carries_mood(message) else None
    data["negative_streak"] = update_negative_streak(
        int(data.get("negative_streak", 0)), felt, policy
    )
    data["fallback_streak"] = update_fallback_streak(
        int(data.get("fallback_streak", 0)), intent, policy
    )
    data["intent_streak"] = update_intent_streak(
        int(data.get("intent_streak", 0)), data.get("last_intent"), intent, policy
    )
    data["last_intent"] = intent
    if intent and intent not in _FILLER_INTENTS and intent not in fallback_intents:
        data["task_intent"] = intent
    order_value = _order_value(session, message)
    if order_value is not None:
        data["order_value"] = order_value
    # An order number typed into the cancel form arrives as `inform`: judge it as the
    # cancellation it belongs to.
    policy_intent = intent
    if intent in _ANSWER_INTENTS and data.get("task_intent") == "cancel_order":
        policy_intent = "cancel_order"
    conversation.handoff = data
    signals = Signals(
        conversation_id=conversation.id,
        intent=policy_intent,
        intent_confidence=message.intent_confidence,
        text=message.text,
        frustration=mood.frustration,
        frustration_explanation=mood.explain(),
        consecutive_negative_turns=int(data["negative_streak"]),
        consecutive_fallbacks=int(data["fallback_streak"]),
        same_intent_turns=int(data["intent_streak"]),
        sentiment_score=felt,
        customer=customer_value(session, conversation),
        order_value=data.get("order_value") if policy_intent == "cancel_order" else None,
        already_escalated=conversation.state != State.BOT,
    )
    decision = evaluate(signals, policy)
    if handoff_trigger is not None and not decision.escalate and signals.already_escalated is False:
        reason = _HANDOFF_REASONS.get(
            handoff_trigger, Reason(handoff_trigger, handoff_trigger.replace("_", " "))
        )
        codes = {r.code for r in decision.reasons}
        reasons = decision.reasons if reason.code in codes else [reason, *decision.reasons]
        priority = max(decision.priority, policy.triggers.human_request.priority)
        triggers = [*decision.triggers, handoff_trigger]
        notes = decision.notes
        if "high_value" not in decision.triggers:
            # high_value.mode: priority leaves the policy's decision at "stay", but a handoff
            # an action started still serves a valuable customer sooner.
            boost, boost_reasons = value_boost(signals.customer, policy)
            if boost_reasons:
                priority = max(priority, boost) + min(
                    policy.combined_bump, policy.max_combined_bump
                )
                reasons = [*reasons, *boost_reasons]
                triggers.append("high_value")
                notes = [n for n in notes if "does not start one" not in n]
        decision = Decision("escalate", priority, reasons, notes, triggers)
    return decision


# ------------------------------------------------------------------ the desk


class HandoffDesk:
    def __init__(
        self,
        engine: Engine,
        rasa: RasaClient,
        bus: EventBus,
        queue: HandoffQueue,
        *,
        profile: Callable[[], BusinessProfile],
        staff_hours: str = "business",
        assignment: str = "claim",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.assignment = assignment
        self.engine = engine
        self.rasa = rasa
        self.bus = bus
        self.queue = queue
        self.profile = profile
        self.staff_hours = staff_hours
        self.clock = clock

    # -------------------------------------------------------------- publishing

    async def to_customer(self, conversation_id: str, event: dict[str, Any]) -> None:
        await self.bus.publish(conversation_topic(conversation_id), event)

    async def to_staff(self, event: dict[str, Any]) -> None:
        await self.bus.publish(STAFF_TOPIC, event)

    async def _say(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.to_customer(conversation_id, {"type": "message", "message": message})

    def wait_text(self, seconds: float) -> str:
        profile = self.profile()
        if seconds < 60:
            return profile.say("wait_under_a_minute")
        return profile.say("wait_minutes", minutes=math.ceil(seconds / 60))

    async def push_positions(self) -> None:
        """Tell every waiting customer their place and expected wait (not stored)."""
        profile = self.profile()
        for position, entry in enumerate(await self.queue.entries(), start=1):
            wait = await self.queue.estimated_wait_seconds(position)
            await self.to_customer(
                entry.conversation_id,
                {
                    "type": "queue",
                    "position": position,
                    "wait_seconds": round(wait),
                    "text": profile.say(
                        "handoff_queue_update", position=position, wait=self.wait_text(wait)
                    ),
                },
            )

    # -------------------------------------------------------------- availability

    async def availability(self) -> tuple[bool, str]:
        """(True, "") when someone can take a chat now, else (False, why for the customer).

        Only a closed shop quotes when it opens again: while open, "we're back today at
        10 AM" would be wrong (it is past 10), so an empty desk just says nobody is free.
        """
        profile = self.profile()
        now = self.clock()
        if self.staff_hours == "business" and not profile.is_open_at(now):
            return False, profile.say(
                "handoff_offline_after_hours", next_opening=profile.reopening(now)
            )
        if not await self.queue.online_staff():
            return False, profile.say("handoff_offline_no_staff")
        return True, ""

    # -------------------------------------------------------------- escalation

    async def escalate(
        self, conversation_id: str, decision: Decision, *, actor: str = "policy"
    ) -> list[dict[str, Any]]:
        """Queue the conversation for staff, or take the offline path; returns what was said."""
        available, why = await self.availability()
        if not available:
            return await self._go_offline(conversation_id, decision, why, actor)
        entry = await run_in_threadpool(self._mark_queued, conversation_id, decision, actor)
        if entry is None:
            return []
        position = await self.queue.enqueue(entry)
        wait = await self.queue.estimated_wait_seconds(position)
        text = self.profile().say("handoff_queued", position=position, wait=self.wait_text(wait))
        said = await run_in_threadpool(
            self._add_message,
            conversation_id,
            "system",
            text,
            {"kind": "queue_position", "position": position, "wait_seconds": round(wait)},
        )
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "escalation",
                "conversation_id": conversation_id,
                "priority": entry.priority,
                "reasons": entry.reasons,
                "customer_value": entry.customer_value,
                "customer_label": entry.customer_label,
                "position": position,
                "at": time.time(),
            }
        )
        if self.assignment == "auto":
            joined = await self.auto_assign(conversation_id)
            if joined is not None:
                return [said, joined]
        await self.push_positions()
        return [said]

    async def auto_assign(self, conversation_id: str) -> dict[str, Any] | None:
        """Give the conversation to the least-loaded online staff member, if any has room."""
        staff_id = await self.queue.auto_assign(conversation_id)
        if staff_id is None:
            return None  # everyone is full: it waits in the queue for a claim
        staff = await run_in_threadpool(self._staff_ref, int(staff_id))
        try:
            said = await run_in_threadpool(self._mark_claimed, conversation_id, staff)
        except DeskError:
            await self.queue.release(conversation_id, staff.queue_id)
            return None
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "assigned",
                "conversation_id": conversation_id,
                "staff_id": staff.id,
            }
        )
        await self.push_positions()
        return said

    def _staff_ref(self, staff_id: int) -> StaffRef:
        with session_scope(self.engine) as session:
            user = session.get_one(StaffUser, staff_id)
            return StaffRef(user.id, user.display_name, user.role, user.capacity)

    def _mark_queued(
        self, conversation_id: str, decision: Decision, actor: str
    ) -> QueueEntry | None:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            if conversation.state != State.BOT:
                return None  # already with staff or queued: nothing new to do
            service.transition(
                session,
                conversation,
                State.QUEUED,
                actor=actor,
                reason=decision.summary,
                data=decision.to_dict(),
            )
            self._record_escalation(session, conversation, decision, actor)
            return self._entry_for(session, conversation, decision)

    def _record_escalation(
        self, session: Session, conversation: Conversation, decision: Decision, actor: str
    ) -> None:
        service.record_event(
            session,
            conversation,
            kind="escalation",
            actor=actor,
            reason=decision.summary,
            data={
                "priority": decision.priority,
                "reasons": [r.text for r in decision.reasons],
                "decision": decision.to_dict(),
                "mood": _mood_brief(conversation.mood),
            },
        )

    def _entry_for(
        self, session: Session, conversation: Conversation, decision: Decision
    ) -> QueueEntry:
        value, label = 0.0, ""
        if conversation.customer_id is not None and conversation.customer_verified:
            customer = session.get(Customer, conversation.customer_id)
            if customer is not None:
                value = float(customer.lifetime_value)
                label = f"{customer.name} ({customer.tier})"
        return QueueEntry(
            conversation_id=conversation.id,
            priority=decision.priority,
            enqueued_at=time.time(),
            reasons=[r.text for r in decision.reasons],
            customer_value=value,
            customer_label=label,
        )

    # -------------------------------------------------------------- offline fallback

    async def _go_offline(
        self, conversation_id: str, decision: Decision, why: str, actor: str
    ) -> list[dict[str, Any]]:
        result = await run_in_threadpool(self._open_ticket, conversation_id, decision, why, actor)
        if result is None:
            return []
        said, ticket_id = result
        await self._say(conversation_id, [said])
        await self.to_staff(
            {"type": "ticket", "conversation_id": conversation_id, "ticket_id": ticket_id}
        )
        return [said]

    def _open_ticket(
        self, conversation_id: str, decision: Decision, why: str, actor: str
    ) -> tuple[dict[str, Any], int] | None:
        profile = self.profile()
        now = self.clock()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            if conversation.state not in (State.BOT, State.QUEUED):
                return None
            service.transition(
                session,
                conversation,
                State.OFFLINE_TICKET,
                actor=actor,
                reason=f"{decision.summary} (nobody available: {why})",
                data=decision.to_dict() | {"offline": why},
            )
            self._record_escalation(session, conversation, decision, actor)
            customer_ids = [
                m.id
                for m in service.list_messages(session, conversation_id)
                if m.sender == "customer"
            ]
            after_hours = self.staff_hours == "business" and not profile.is_open_at(now)
            ticket = Ticket(
                conversation_id=conversation_id,
                reasons=[r.text for r in decision.reasons],
                message_ids=customer_ids,
                why_offline=why[:200],
                reply_by=profile.next_opening(now) if after_hours else None,
            )
            session.add(ticket)
            session.flush()
            data = handoff_data(conversation)
            data.update({"offline_step": "name", "ticket_id": ticket.id})
            conversation.handoff = data
            message, _ = service.add_message(
                session,
                conversation,
                sender="bot",
                text=profile.say("handoff_offline_ask_name", why=why),
                payload={"kind": "offline_contact", "ticket_id": ticket.id},
            )
            session.flush()
            return message_view(message), ticket.id

    def offline_step(self, conversation_id: str, message_id: int) -> OfflineStep:
        """The gateway-side contact flow for an offline ticket (storage thread).

        The customer's message is the answer to "What's your name?" (then "e-mail or
        phone?"), unless it is not one: a question or a request goes to the bot like any
        other message (`answer_first`), and the form asks again afterwards
        (`offline_reask`). "no thanks" or "cancel" leaves the form; the ticket keeps the
        question. When the ticket is complete, `forward` sends the message to the bot.
        """
        profile = self.profile()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            message = session.get_one(Message, message_id)
            data = handoff_data(conversation)
            ticket = session.get(Ticket, data.get("ticket_id")) if data.get("ticket_id") else None
            step = data.get("offline_step")
            if ticket is None or step not in ("name", "contact"):
                service.transition(
                    session,
                    conversation,
                    State.BOT,
                    actor="customer",
                    reason="the customer wrote again after leaving a ticket",
                )
                data.pop("offline_step", None)
                conversation.handoff = data
                return OfflineStep(forward=True)
            ticket.message_ids = [*ticket.message_ids, message.id]
            text = message.text.strip()
            if is_opt_out(text):
                return OfflineStep(self._leave_form(session, conversation, ticket, data))
            reply: str | None = None
            if step == "name":
                name = parse_name(text)
                if name is None:
                    return OfflineStep(answer_first=True)  # a question, not a name
                ticket.name = name
                data["offline_step"] = "contact"
                data.pop("offline_reasked", None)
                reply = profile.say("handoff_offline_ask_contact", name=name)
            else:
                email, bad_email = find_email(text)
                phone = None if email or bad_email else normalise_phone(text)
                if bad_email:
                    reply = profile.say("handoff_offline_email_invalid", email=bad_email)
                elif not email and not phone:
                    if looks_like_question(text):
                        return OfflineStep(answer_first=True)
                    reply = profile.say("handoff_offline_contact_invalid")
                else:
                    ticket.email, ticket.phone, ticket.status = email, phone, "open"
                    data["offline_step"] = "done"
                    when = (
                        profile.say(
                            "handoff_reply_by_opening",
                            next_opening=profile.reopening(self.clock()),
                        )
                        if ticket.reply_by is not None
                        else profile.say("handoff_reply_soon")
                    )
                    reply = profile.say(
                        "handoff_offline_ticket",
                        name=ticket.name or "",
                        ticket=ticket.id,
                        contact=email or phone,
                        when=when,
                    )
                    service.record_event(
                        session,
                        conversation,
                        kind="ticket_opened",
                        actor="customer",
                        reason=f"ticket #{ticket.id}",
                        data={"ticket_id": ticket.id, "message_ids": ticket.message_ids},
                    )
            message.status = "held"
            conversation.handoff = data
            said, _ = service.add_message(
                session,
                conversation,
                sender="bot",
                text=reply,
                payload={"kind": "offline_contact", "ticket_id": ticket.id},
            )
            session.flush()
            return OfflineStep([message_view(said)])

    def _leave_form(
        self, session: Session, conversation: Conversation, ticket: Ticket, data: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The customer does not want to leave details: back to the bot, the ticket stays."""
        message = session.get_one(Message, ticket.message_ids[-1])
        message.status = "held"
        ticket.status = "open"
        data.pop("offline_step", None)
        data.pop("offline_reasked", None)
        conversation.handoff = data
        service.transition(
            session,
            conversation,
            State.BOT,
            actor="customer",
            reason="the customer declined to leave contact details",
            data={"ticket_id": ticket.id},
        )
        profile = self.profile()
        said, _ = service.add_message(
            session,
            conversation,
            sender="bot",
            text=profile.say(
                "handoff_offline_left_form",
                ticket_note=profile.say("handoff_offline_left_form_ticket", ticket=ticket.id),
            ),
            payload={"kind": "offline_contact", "ticket_id": ticket.id},
        )
        session.flush()
        return [message_view(said)]

    def offline_reask(self, conversation_id: str) -> list[dict[str, Any]]:
        """After the bot answered a question mid-form: ask for the detail again, once."""
        profile = self.profile()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            data = handoff_data(conversation)
            step = data.get("offline_step")
            if conversation.state != State.OFFLINE_TICKET or step not in ("name", "contact"):
                return []
            if data.get("offline_reasked") == step:
                return []  # asked again already: the form stays open, without nagging
            data["offline_reasked"] = step
            conversation.handoff = data
            key = f"handoff_offline_ask_{step}_again"
            said, _ = service.add_message(
                session,
                conversation,
                sender="bot",
                text=profile.say(key),
                payload={"kind": "offline_contact", "ticket_id": data.get("ticket_id")},
            )
            session.flush()
            return [message_view(said)]

    # -------------------------------------------------------------- staff actions

    async def ensure_online(self, staff: StaffRef) -> None:
        """Claiming means working: an offline (or expired) member comes online to claim."""
        presence = await self.queue.presence(staff.queue_id)
        if presence.state == "offline":
            await self.queue.set_presence(staff.queue_id, "online", staff.capacity)

    async def claim(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        await self.ensure_online(staff)
        result = await self.queue.claim(conversation_id, staff.queue_id)
        if not result.ok and result.code == "not_queued":
            # The queue may have lost it (an in-process queue after a restart): the
            # database is the truth, so put it back and try once more.
            entry = await run_in_threadpool(self._queued_entry, conversation_id)
            if entry is not None and await self.queue.assigned_to(conversation_id) is None:
                await self.queue.enqueue(entry)
                result = await self.queue.claim(conversation_id, staff.queue_id)
        if not result.ok:
            raise DeskError(409, f"Cannot claim: {result.reason}.")
        try:
            said = await run_in_threadpool(self._mark_claimed, conversation_id, staff)
        except DeskError:
            await self.queue.release(conversation_id, staff.queue_id)
            raise
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "claimed",
                "conversation_id": conversation_id,
                "staff_id": staff.id,
            }
        )
        await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.WITH_STAFF.value}

    def _queued_entry(self, conversation_id: str) -> QueueEntry | None:
        """The queue entry of a conversation the database says is queued, rebuilt."""
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            if conversation.state != State.QUEUED:
                return None
            decision = _last_decision(session, conversation_id)
        return self._rebuild_entry(conversation_id, decision)

    def _rebuild_entry(self, conversation_id: str, decision: dict[str, Any]) -> QueueEntry:
        return QueueEntry(
            conversation_id=conversation_id,
            priority=int(decision.get("priority", 0)),
            enqueued_at=time.time(),
            reasons=[r.get("text", "") for r in decision.get("reasons", [])],
        )

    def _mark_claimed(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            # The queue's claim is atomic; this guards the database too, in case the
            # queue and the database ever disagree.
            if conversation.state != State.QUEUED:
                raise DeskError(409, f"Cannot claim: the conversation is {conversation.state}.")
            service.transition(
                session,
                conversation,
                State.WITH_STAFF,
                actor=staff.actor,
                reason=f"claimed by {staff.display_name}",
            )
            conversation.assigned_staff_id = staff.id
            data = handoff_data(conversation)
            data["claimed_at"] = time.time()
            conversation.handoff = data
            message, _ = service.add_message(
                session,
                conversation,
                sender="system",
                text=self.profile().say("handoff_staff_joined", staff_name=staff.display_name),
                payload={"kind": "staff_joined", "staff_name": staff.display_name},
            )
            session.flush()
            return message_view(message)

    def _assigned(
        self, session: Session, conversation_id: str, staff: StaffRef, *, owner_ok: bool = True
    ) -> Conversation:
        conversation = service.get_conversation(session, conversation_id, lock=True)
        if conversation.state != State.WITH_STAFF:
            raise DeskError(409, f"The conversation is {conversation.state}, not with staff.")
        if conversation.assigned_staff_id != staff.id and not (owner_ok and staff.is_owner):
            raise DeskError(403, "This conversation is assigned to someone else.")
        return conversation

    async def reply(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = self._assigned(session, conversation_id, staff)
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="staff",
                    text=text,
                    payload={"staff_id": staff.id, "staff_name": staff.display_name},
                )
                session.flush()
                return message_view(message)

        message = await run_in_threadpool(store)
        await self._say(conversation_id, [message])
        await self.to_staff(
            {
                "type": "staff_message",
                "conversation_id": conversation_id,
                "assigned_staff_id": staff.id,
                "message": message,
            }
        )
        return message

    async def note(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        """An internal note: stored, shown to staff, never sent to the customer."""

        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="staff",
                    text=text,
                    payload={
                        "internal": True,
                        "staff_id": staff.id,
                        "staff_name": staff.display_name,
                    },
                    status="internal",
                )
                session.flush()
                return staff_message_view(message) | {
                    "assigned_staff_id": conversation.assigned_staff_id
                }

        note = await run_in_threadpool(store)
        await self.to_staff(
            {
                "type": "note",
                "conversation_id": conversation_id,
                "assigned_staff_id": note.pop("assigned_staff_id"),
                "message": note,
            }
        )
        return note

    async def transfer(
        self, conversation_id: str, staff: StaffRef, to_staff_id: int
    ) -> dict[str, Any]:
        def target() -> StaffRef:
            with session_scope(self.engine) as session:
                user = session.get(StaffUser, to_staff_id)
                if user is None or not user.active:
                    raise DeskError(422, f"No active staff member with id {to_staff_id}.")
                conversation = self._assigned(session, conversation_id, staff)
                del conversation
                return StaffRef(user.id, user.display_name, user.role, user.capacity)

        to = await run_in_threadpool(target)
        holder = await self.queue.assigned_to(conversation_id) or staff.queue_id
        result = await self.queue.transfer(conversation_id, holder, to.queue_id)
        if not result.ok:
            raise DeskError(409, f"Cannot transfer: {result.reason}.")

        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                conversation.assigned_staff_id = to.id
                service.record_event(
                    session,
                    conversation,
                    kind="transferred",
                    actor=staff.actor,
                    reason=f"transferred to {to.display_name}",
                    data={"from_staff_id": staff.id, "to_staff_id": to.id},
                )
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="system",
                    text=self.profile().say("handoff_transferred", staff_name=to.display_name),
                    payload={"kind": "transferred", "staff_name": to.display_name},
                )
                session.flush()
                return message_view(message)

        said = await run_in_threadpool(store)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "transferred",
                "conversation_id": conversation_id,
                "staff_id": to.id,
                "assigned_staff_id": to.id,
            }
        )
        return {"conversation_id": conversation_id, "assigned_staff_id": to.id}

    async def return_to_bot(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        def store() -> tuple[dict[str, Any], float | None]:
            with session_scope(self.engine) as session:
                conversation = self._assigned(session, conversation_id, staff)
                handled = _handle_seconds(conversation)
                previous_mood = Mood.from_dict(conversation.mood or {}).snapshot()
                service.transition(
                    session,
                    conversation,
                    State.BOT,
                    actor=staff.actor,
                    reason=f"returned to the bot by {staff.display_name}",
                    data={"handle_seconds": handled, "mood_before": previous_mood},
                )
                conversation.assigned_staff_id = None
                # A fresh start: the frustration that caused the handoff was dealt with by a
                # person, and must not send the next routine question straight back.
                conversation.mood = None
                # Remembered so that this person may still wrap the chat up (close + CSAT).
                conversation.handoff = {"returned_by": staff.id}
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="bot",
                    text=self.profile().say("handoff_returned"),
                    payload={"kind": "returned_to_bot"},
                )
                session.flush()
                return message_view(message), handled

        said, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        # Rasa resumes with a clean dialogue state (forms the chat left open are dropped).
        await self.rasa.resume(conversation_id)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "returned_to_bot",
                "conversation_id": conversation_id,
            }
        )
        return {"conversation_id": conversation_id, "state": State.BOT.value}

    async def close(self, conversation_id: str, staff: StaffRef, resolution: str) -> dict[str, Any]:
        def store() -> tuple[dict[str, Any], float | None]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                if conversation.state == State.WITH_STAFF:
                    conversation = self._assigned(session, conversation_id, staff)
                elif conversation.state == State.BOT:
                    # Wrap-up after a return to the bot: whoever returned it, or the owner.
                    returned_by = (conversation.handoff or {}).get("returned_by")
                    if returned_by is None or (returned_by != staff.id and not staff.is_owner):
                        raise DeskError(
                            409, "The bot has this conversation; only staff who handled it "
                            "can close it."
                        )
                elif conversation.state not in (State.QUEUED, State.OFFLINE_TICKET):
                    raise DeskError(
                        409, f"The conversation is {conversation.state}; nothing to close."
                    )
                handled = _handle_seconds(conversation)
                service.transition(
                    session,
                    conversation,
                    State.CLOSED,
                    actor=staff.actor,
                    reason=resolution,
                    data={"resolution": resolution, "handle_seconds": handled},
                )
                conversation.resolution = resolution
                for ticket in conversation.tickets:
                    if ticket.status != "resolved":
                        ticket.status = "resolved"
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="system",
                    text=self.profile().say("handoff_csat"),
                    payload={"kind": "csat_request"},
                )
                session.flush()
                return message_view(message), handled

        said, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        removed = await self.queue.remove(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {"type": "queue_changed", "change": "closed", "conversation_id": conversation_id}
        )
        if removed:
            await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.CLOSED.value}

    # -------------------------------------------------------------- views

    async def queue_view(self, staff: StaffRef) -> dict[str, Any]:
        entries = await self.queue.entries()
        now = time.time()
        moods = await run_in_threadpool(self._moods, [e.conversation_id for e in entries])
        waiting = []
        for position, entry in enumerate(entries, start=1):
            waiting.append(
                {
                    "conversation_id": entry.conversation_id,
                    "position": position,
                    "priority": entry.priority,
                    "reasons": entry.reasons,
                    "customer_value": entry.customer_value,
                    "customer_label": entry.customer_label,
                    "waiting_seconds": round(max(0.0, now - entry.enqueued_at), 1),
                    "mood": moods.get(entry.conversation_id),
                }
            )
        mine = await run_in_threadpool(self._assigned_to, staff.id)
        presence = await self.queue.presence(staff.queue_id)
        return {
            "queue": waiting,
            "mine": mine,
            "presence": {
                "state": presence.state,
                "capacity": presence.capacity,
                "load": presence.load,
            },
            "online_staff": len(await self.queue.online_staff()),
        }

    def _moods(self, conversation_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not conversation_ids:
            return {}
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Conversation.id, Conversation.mood).where(
                    Conversation.id.in_(conversation_ids)
                )
            ).all()
        return {cid: _mood_brief(mood) for cid, mood in rows}

    def _assigned_to(self, staff_id: int) -> list[dict[str, Any]]:
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(Conversation).where(
                    Conversation.assigned_staff_id == staff_id,
                    Conversation.state == State.WITH_STAFF.value,
                )
            ).all()
            return [
                {"conversation_id": c.id, "state": c.state, "mood": _mood_brief(c.mood)}
                for c in rows
            ]

    async def context(self, conversation_id: str) -> dict[str, Any]:
        """What staff need beside the chat: transcript, mood, reasons, customer, summary."""
        return await run_in_threadpool(self._context, conversation_id)

    def _context(self, conversation_id: str) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            messages = service.list_messages(session, conversation_id)
            events = list(
                session.scalars(
                    select(ConversationEvent)
                    .where(ConversationEvent.conversation_id == conversation_id)
                    .order_by(ConversationEvent.id)
                )
            )
            customer = None
            if conversation.customer_id is not None:
                row = session.scalars(
                    select(Customer)
                    .where(Customer.id == conversation.customer_id)
                    .options(selectinload(Customer.orders))
                ).one_or_none()
                if row is not None:
                    orders = sorted(row.orders, key=lambda o: o.placed_at, reverse=True)[:5]
                    customer = {
                        "id": row.id,
                        "name": row.name,
                        "email": row.email,
                        "phone": row.phone,
                        "tier": row.tier,
                        "lifetime_value": _money(row.lifetime_value),
                        "verified": conversation.customer_verified,
                        "verified_via": conversation.verified_via,
                        "orders": [
                            {
                                "number": o.number,
                                "status": o.status,
                                "total": _money(o.total),
                                "placed_at": o.placed_at.isoformat(),
                            }
                            for o in orders
                        ],
                    }
            customer_messages = [m for m in messages if m.sender == "customer"]
            intents = Counter(m.intent for m in customer_messages if m.intent)
            return {
                "conversation": {
                    "id": conversation.id,
                    "state": conversation.state,
                    "assigned_staff_id": conversation.assigned_staff_id,
                    "returned_by": (conversation.handoff or {}).get("returned_by"),
                    "created_at": conversation.created_at.isoformat(),
                    "csat": conversation.csat,
                    "resolution": conversation.resolution,
                },
                "transcript": [staff_message_view(m) for m in messages],
                "mood": _mood_brief(conversation.mood),
                "mood_timeline": [
                    {
                        "message_id": m.id,
                        "at": m.created_at.isoformat(),
                        "score": m.sentiment_score,
                        "negative": m.sentiment_negative,
                        "neutral": m.sentiment_neutral,
                        "positive": m.sentiment_positive,
                    }
                    for m in customer_messages
                    if m.sentiment_score is not None
                ],
                "escalations": [
                    {
                        "at": e.created_at.isoformat(),
                        "actor": e.actor,
                        "reasons": (e.data or {}).get("reasons", []),
                        "priority": (e.data or {}).get("priority"),
                    }
                    for e in events
                    if e.kind == "escalation"
                ],
                "events": [
                    {
                        "kind": e.kind,
                        "from": e.from_state,
                        "to": e.to_state,
                        "actor": e.actor,
                        "reason": e.reason,
                        "at": e.created_at.isoformat(),
                    }
                    for e in events
                ],
                "customer": customer,
                "intents": dict(intents.most_common()),
                "summary": summarize(customer_messages),
            }

    # -------------------------------------------------------------- housekeeping

    async def resync(self) -> int:
        """After a restart: put back queued conversations the queue does not hold."""
        known = {e.conversation_id for e in await self.queue.entries()}
        missing = await run_in_threadpool(self._queued_decisions, known)
        for conversation_id, decision in missing:
            if await self.queue.assigned_to(conversation_id) is None:
                await self.queue.enqueue(self._rebuild_entry(conversation_id, decision))
        return len(missing)

    def _queued_decisions(self, known: set[str]) -> list[tuple[str, dict[str, Any]]]:
        with session_scope(self.engine) as session:
            ids = session.scalars(
                select(Conversation.id).where(Conversation.state == State.QUEUED.value)
            ).all()
            return [(cid, _last_decision(session, cid)) for cid in ids if cid not in known]

    async def announce_overdue(self, sla_seconds: float) -> list[QueueEntry]:
        """Re-announce conversations waiting past the SLA (one process wins each)."""
        overdue = await self.queue.overdue(time.time(), sla_seconds)
        if overdue:
            await self.to_staff(
                {"type": "sla_overdue", "entries": [entry.to_dict() for entry in overdue]}
            )
            await self.push_positions()
        return overdue

    def _add_message(
        self, conversation_id: str, sender: str, text: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            message, _ = service.add_message(
                session, conversation, sender=sender, text=text, payload=payload
            )
            session.flush()
            return message_view(message)


# ------------------------------------------------------------------ helpers


def staff_message_view(message: Message) -> dict[str, Any]:
    """Staff see everything the customer sees, plus NLU, sentiment and internal notes."""
    payload = message.payload or {}
    return message_view(message) | {
        "internal": bool(payload.get("internal")),
        "staff_name": payload.get("staff_name"),
        "intent": message.intent,
        "intent_confidence": message.intent_confidence,
        "sentiment_score": message.sentiment_score,
    }


def summarize(customer_messages: list[Message], limit: int = 3) -> dict[str, Any]:
    """A short extractive summary: the first real request, the most negative and the latest.

    No language model: the customer's own words, picked by NLU intent and sentiment.
    """
    if not customer_messages:
        return {"text": "", "points": []}
    requests = [m for m in customer_messages if m.intent and m.intent not in _FILLER_INTENTS]
    first = requests[0] if requests else customer_messages[0]
    picked: list[tuple[str, Message]] = [("asked", first)]
    scored = [m for m in customer_messages if m.sentiment_score is not None]
    if scored:
        worst = min(scored, key=lambda m: m.sentiment_score or 0.0)
        if (worst.sentiment_score or 0.0) < -0.3:
            picked.append(("upset", worst))
    picked.append(("latest", customer_messages[-1]))
    seen: set[int] = set()
    points = []
    for label, message in picked:
        if message.id in seen:
            continue
        seen.add(message.id)
        text = message.text if len(message.text) <= 200 else message.text[:197] + "..."
        points.append(
            {"label": label, "message_id": message.id, "intent": message.intent, "text": text}
        )
    points = points[:limit]
    topic = first.intent.replace("_", " ") if first.intent else "unclear"
    text = f"Topic: {topic}. " + " ".join(
        f'{p["label"].capitalize()}: "{p["text"]}"' for p in points
    )
    return {"text": text, "points": points}


def _mood_brief(mood: dict[str, Any] | None) -> dict[str, Any] | None:
    if not mood:
        return None
    restored = Mood.from_dict(mood)
    return {
        "frustration": round(restored.frustration, 4),
        "explanation": restored.explain(),
        "ema": None if restored.ema is None else round(restored.ema, 4),
    }


def _money(value: Decimal | float) -> float:
    return float(value)


def _handle_seconds(conversation: Conversation) -> float | None:
    claimed = (conversation.handoff or {}).get("claimed_at")
    return round(max(0.0, time.time() - float(claimed)), 3) if claimed is not None else None


def _last_decision(session: Session, conversation_id: str) -> dict[str, Any]:
    event = session.scalars(
        select(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.kind == "escalation",
        )
        .order_by(ConversationEvent.id.desc())
        .limit(1)
    ).one_or_none()
    return dict(((event.data or {}).get("decision") or {}) if event else {})
