"""From stored rows to the per-turn step (`handoff.turn.decide_turn`) and back.

The gateway's turn and the demo-history seeder both call `decide_stored_turn`, so the
step sees the same facts whoever calls it, and its state is saved the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff import turn as turn_step
from handoff.policy import CustomerValue, Decision, PolicySettings
from handoff.turn import TurnFacts
from sentiment.analyzer import SentimentScores
from tandem.business.models import Customer, Order, OrderStatus
from tandem.business.service import normalise_order_number
from tandem.conversations import service
from tandem.conversations.models import Conversation, Message
from tandem.conversations.states import State

OPEN_ORDER_STATES = frozenset(
    {OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY}
)


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
            Order.status.in_([s.value for s in OPEN_ORDER_STATES]),
        )
    ).all()
    return CustomerValue(
        verified=True,
        tier=customer.tier,
        lifetime_value=float(customer.lifetime_value),
        open_order_value=float(max(open_total)) if open_total else None,
    )


def named_order_value(session: Session, message: Message) -> float | None:
    """The value of the order the message names by number, if it exists."""
    for entity in message.entities or []:
        if entity.get("entity") == "order_number":
            number = normalise_order_number(str(entity.get("value") or ""))
            if number:
                total = session.scalar(select(Order.total).where(Order.number == number))
                if total is not None:
                    return float(total)
    return None


def turn_facts(
    session: Session,
    message: Message,
    *,
    handoff_request: str | None = None,
    slot_retries: int = 0,
    slot_refused: bool = False,
    fallback: bool | None = None,
    bot_answered: bool = True,
    bot_texts: Sequence[str] = (),
) -> TurnFacts:
    """A stored customer message (with its NLU and sentiment) as the step's input."""
    return TurnFacts(
        text=message.text,
        intent=message.intent,
        confidence=message.intent_confidence,
        entity_spans=entity_spans(message),
        sentiment=message.sentiment_score,
        handoff_request=handoff_request,
        slot_retries=slot_retries,
        slot_refused=slot_refused,
        fallback=fallback,
        order_value=named_order_value(session, message),
        bot_answered=bot_answered,
        bot_texts=tuple(bot_texts),
    )


def decide_stored_turn(
    session: Session,
    conversation: Conversation,
    message: Message,
    policy: PolicySettings,
    *,
    handoff_request: str | None = None,
    slot_retries: int = 0,
    slot_refused: bool = False,
    fallback: bool | None = None,
    bot_answered: bool = True,
    bot_texts: Sequence[str] = (),
) -> Decision:
    """The per-turn step on a stored customer message; the new state and Mood are saved."""
    outcome = turn_step.decide_turn(
        turn_facts(
            session,
            message,
            handoff_request=handoff_request,
            slot_retries=slot_retries,
            slot_refused=slot_refused,
            fallback=fallback,
            bot_answered=bot_answered,
            bot_texts=bot_texts,
        ),
        service.load_handoff(conversation),
        service.load_mood(conversation),
        customer_value(session, conversation),
        policy,
        conversation_id=conversation.id,
        already_escalated=conversation.state != State.BOT,
    )
    service.save_handoff(conversation, outcome.state)
    conversation.mood = outcome.mood.to_dict()
    return outcome.decision
