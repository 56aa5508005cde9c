"""Per-turn bookkeeping (sentiment, Mood, streaks, the policy's verdict) and escalation:
queueing a conversation for staff, or auto-assigning it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.desk.core import _FILLER_INTENTS, DeskError, StaffRef, handoff_data
from bot.desk.offline import OfflineMixin
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
from handoff.queue import QueueEntry
from sentiment.analyzer import SentimentScores
from sentiment.mood import Mood, carries_feeling
from tandem.business.models import Customer, Order, OrderStatus
from tandem.business.service import normalise_order_number
from tandem.conversations import service
from tandem.conversations.models import Conversation, Message
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.staff.models import StaffUser

# A form answer keeps the task it answers (an order number given for cancel_order).
_ANSWER_INTENTS = frozenset({"inform", "affirm", "deny"})
_OPEN_ORDER_STATES = frozenset(
    {OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY}
)
_HANDOFF_REASONS = {
    "request_human": Reason("asked_for_person", "asked for a person", "request_human"),
    "complaint": Reason("complaint", "customer is making a complaint", "complaint"),
}


def record_sentiment(message: Message, scores: SentimentScores | None) -> None:
    if scores is None:
        return
    message.sentiment_negative = float(scores.negative)
    message.sentiment_neutral = float(scores.neutral)
    message.sentiment_positive = float(scores.positive)
    message.sentiment_score = float(scores.score)


def entity_spans(message: Message) -> list[tuple[int, int]]:
    spans = ((e.get("start"), e.get("end")) for e in message.entities or [])
    return [(s, e) for s, e in spans if isinstance(s, int) and isinstance(e, int)]


def carries_mood(message: Message) -> bool:
    """Whether the Mood and the negative streak count this message (see carries_feeling)."""
    return carries_feeling(message.text, entity_spans(message))


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


class EscalationMixin(OfflineMixin):
    """Escalate to the queue (or fall back to the offline ticket) and auto-assign."""

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
