"""The sentiment log: conversations with their scores, outcome and reasons, filtered."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from tandem.business.models import Customer
from tandem.conversations.models import Conversation, Message
from tandem.conversations.service import get_conversation
from tandem.reports.service import (
    LogFilters,
    Masker,
    customers_by_id,
    escalation_reasons,
    known_names,
    log_outcome,
    sentiment_bucket,
    staff_ids,
    staff_names,
    summarize,
)

# Conversations are read from the database in batches of this many (exports stream).
BATCH = 200


@dataclass(frozen=True)
class Found:
    conversation: Conversation
    customer: Customer | None


def _candidates(session: Session, filters: LogFilters) -> Any:
    """The SQL part of the filters (period, tier, text); the rest needs the events."""
    lower, upper = filters.period.bounds()
    has_customer_message = exists().where(
        Message.conversation_id == Conversation.id, Message.sender == "customer"
    )
    query = select(Conversation.id).where(
        Conversation.created_at >= lower, Conversation.created_at < upper, has_customer_message
    )
    if filters.tier is not None:
        query = query.join(Customer, Customer.id == Conversation.customer_id).where(
            Customer.tier == filters.tier
        )
    if filters.q is not None:
        needle = (
            "%"
            + filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        query = query.where(
            exists().where(
                Message.conversation_id == Conversation.id,
                func.lower(Message.text).like(needle, escape="\\"),
            )
        )
    # Newest first; the id breaks ties so pages are stable.
    return query.order_by(Conversation.created_at.desc(), Conversation.id.desc())


def needs_events(filters: LogFilters) -> bool:
    """Whether a filter is decided from the events and scores, not by SQL."""
    return any(
        value is not None
        for value in (filters.outcome, filters.reason, filters.staff_id, filters.sentiment)
    )


def _matches(found: Found, filters: LogFilters) -> bool:
    conversation = found.conversation
    if filters.outcome is not None and log_outcome(conversation) != filters.outcome:
        return False
    if filters.reason is not None and filters.reason not in escalation_reasons(conversation)[0]:
        return False
    if filters.staff_id is not None and filters.staff_id not in staff_ids(conversation):
        return False
    if filters.sentiment is not None:
        scores = [
            m.sentiment_score
            for m in conversation.messages
            if m.sender == "customer" and m.sentiment_score is not None
        ]
        average = sum(scores) / len(scores) if scores else None
        if sentiment_bucket(average) != filters.sentiment:
            return False
    return True


def candidate_ids(session: Session, filters: LogFilters) -> list[str]:
    return list(session.scalars(_candidates(session, filters)))


def load_matching(session: Session, ids: list[str], filters: LogFilters) -> list[Found]:
    """The conversations `ids` (in that order) that pass the event-based filters."""
    loaded = {
        c.id: c
        for c in session.scalars(
            select(Conversation)
            .where(Conversation.id.in_(ids))
            .options(
                selectinload(Conversation.messages),
                selectinload(Conversation.events),
                selectinload(Conversation.tickets),
            )
        )
    }
    customers = customers_by_id(session, (c.customer_id for c in loaded.values()))
    found = [
        Found(loaded[i], customers.get(loaded[i].customer_id or -1)) for i in ids if i in loaded
    ]
    return [f for f in found if _matches(f, filters)]


def iter_matching(session: Session, filters: LogFilters) -> Iterator[Found]:
    """Every conversation the filters select, newest first, loaded in batches."""
    ids = candidate_ids(session, filters)
    for start in range(0, len(ids), BATCH):
        yield from load_matching(session, ids[start : start + BATCH], filters)


def query_log(
    session: Session, filters: LogFilters, *, page: int, page_size: int, masker: Masker
) -> dict[str, Any]:
    """One page of the log (GET /api/owner/log)."""
    start = (page - 1) * page_size
    if needs_events(filters):
        matching = list(iter_matching(session, filters))
        total, shown = len(matching), matching[start : start + page_size]
    else:
        # SQL alone decides: load only this page's conversations, not every match.
        ids = candidate_ids(session, filters)
        total, shown = len(ids), load_matching(session, ids[start : start + page_size], filters)
    names = staff_names(session)
    return {
        "total": total,
        "page": page,
        "page_size": page_size,
        "conversations": [summarize(f.conversation, f.customer, names, masker) for f in shown],
    }


def message_detail(message: Message, masker: Masker, names: list[str]) -> dict[str, Any]:
    return {
        "id": message.id,
        "sender": message.sender,
        "text": masker.text(message.text, names),
        "created_at": message.created_at.isoformat(),
        "status": message.status,
        "intent": message.intent,
        "intent_confidence": message.intent_confidence,
        "sentiment_score": message.sentiment_score,
        "negative": message.sentiment_negative,
        "neutral": message.sentiment_neutral,
        "positive": message.sentiment_positive,
    }


def conversation_detail(session: Session, conversation_id: str, masker: Masker) -> dict[str, Any]:
    """One conversation of the log with its messages and events; ConversationNotFound."""
    conversation = get_conversation(session, conversation_id)
    customer = customers_by_id(session, [conversation.customer_id]).get(
        conversation.customer_id or -1
    )
    names = known_names(conversation, customer)
    events = [
        {
            "kind": e.kind,
            "from": e.from_state,
            "to": e.to_state,
            "actor": e.actor,
            # Reasons may quote the customer (a closing note, a ticket number): masked too.
            "reason": masker.text(e.reason, names) if e.reason else e.reason,
            "at": e.created_at.isoformat(),
        }
        for e in conversation.events
    ]
    escalations = [
        {
            "at": e.created_at.isoformat(),
            "reasons": list((e.data or {}).get("reasons") or []),
            "triggers": list(((e.data or {}).get("decision") or {}).get("triggers") or []),
            "priority": (e.data or {}).get("priority"),
        }
        for e in conversation.events
        if e.kind == "escalation"
    ]
    return {
        "conversation": summarize(conversation, customer, staff_names(session), masker),
        "messages": [message_detail(m, masker, names) for m in conversation.messages],
        "events": events,
        "escalations": escalations,
        "masked": masker.enabled,
    }
