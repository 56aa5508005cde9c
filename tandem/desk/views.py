"""What staff see: the queue view, a conversation's context, its summary and message views."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.concurrency import run_in_threadpool

from handoff.turn import FILLER_INTENTS
from sentiment.mood import Mood
from tandem.business.models import Customer
from tandem.conversations import service
from tandem.conversations.models import Conversation, ConversationEvent, Message
from tandem.conversations.states import State
from tandem.conversations.views import message_view
from tandem.db import session_scope
from tandem.desk.core import CoreDesk
from tandem.staff.actor import StaffRef


class ViewsMixin(CoreDesk):
    """The queue and conversation views of the staff console."""

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
                    "returned_by": service.load_handoff(conversation).returned_by,
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


def _mood_brief(mood: dict[str, Any] | None) -> dict[str, Any] | None:
    return Mood.from_dict(mood).brief() if mood else None


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


TOPIC_MIN_CONFIDENCE = 0.6
_NOT_A_TOPIC = frozenset({"nlu_fallback", "out_of_scope", "request_human"})


def summarize(customer_messages: list[Message], limit: int = 3) -> dict[str, Any]:
    """A short extractive summary: the first real request, the most negative and the latest.

    No language model: the customer's own words, picked by NLU intent and sentiment.
    """
    if not customer_messages:
        return {"text": "", "points": []}
    # Only what NLU was sure of counts as a request: a guess or a fallback never names the
    # topic (staff were told the chat was about returns when it never was).
    requests = [
        m
        for m in customer_messages
        if m.intent
        and m.intent not in FILLER_INTENTS
        and m.intent not in _NOT_A_TOPIC
        and (m.intent_confidence is None or m.intent_confidence >= TOPIC_MIN_CONFIDENCE)
    ]
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
    # The topic is what the customer was asking about last (what the person picks up).
    topic = requests[-1].intent.replace("_", " ") if requests and requests[-1].intent else "unclear"
    text = f"Topic: {topic}. " + " ".join(
        f'{p["label"].capitalize()}: "{p["text"]}"' for p in points
    )
    return {"text": text, "points": points}


def _money(value: Decimal | float) -> float:
    return float(value)
