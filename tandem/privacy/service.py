"""One customer's personal data: deliberate unmasking, search, export and deletion.

The gateway's own tables are the system of record. Rasa's tracker store keeps its own copy
of each transcript (see `delete_rasa_tracker` and the README's privacy notes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from tandem.business.models import (
    Booking,
    Customer,
    Order,
    OrderItem,
    Product,
    ReturnRequest,
)
from tandem.business.profile import BusinessProfile
from tandem.conversations.models import Conversation, ConversationEvent, Message, Ticket
from tandem.db import utcnow
from tandem.privacy.masking import Vocabulary
from tandem.staff.models import AuditLog, StaffUser
from tandem.staff.service import list_audit, record_audit

__all__ = [
    "ConversationNotFound",
    "CustomerNotFound",
    "PrivacyError",
    "audit_entries",
    "business_vocabulary",
    "customer_conversation_ids",
    "delete_conversations",
    "delete_customer",
    "delete_rasa_tracker",
    "export_customer",
    "find_customers",
    "list_audit",
    "unmask_conversation",
]

MIN_REASON = 3
SEARCH_LIMIT = 20


class PrivacyError(ValueError):
    """Bad input (e.g. no reason given); the web layer answers 422."""


class ConversationNotFound(LookupError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation {conversation_id!r}")
        self.conversation_id = conversation_id


class CustomerNotFound(LookupError):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"no customer {customer_id}")
        self.customer_id = customer_id


def _json(value: Any) -> Any:
    """Database values made JSON-friendly (datetimes as ISO 8601, money as a string)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    skipped = set(skip)
    return {
        column.key: _json(getattr(obj, column.key))
        for column in obj.__table__.columns
        if column.key not in skipped
    }


# ---------------------------------------------------------------------------- unmask


@dataclass(frozen=True)
class Unmasked:
    conversation_id: str
    messages: list[dict[str, Any]]
    audit_id: int


def unmask_conversation(
    session: Session, conversation_id: str, actor: int | None, reason: str
) -> Unmasked:
    """The original transcript of one conversation; every unmasking is audited."""
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise PrivacyError(f"Give a reason (at least {MIN_REASON} characters) for unmasking.")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    messages = [
        {"id": m.id, "sender": m.sender, "text": m.text, "created_at": _json(m.created_at)}
        for m in conversation.messages
    ]
    entry = record_audit(
        session, actor, "unmask", target=conversation_id, detail={"reason": reason[:500]}
    )
    return Unmasked(conversation_id, messages, entry.id)


# ---------------------------------------------------------------------------- search


def find_customers(session: Session, query: str) -> list[dict[str, Any]]:
    """Customers by id, e-mail or name (case-insensitive, partial), with conversation counts."""
    query = (query or "").strip()
    if not query:
        raise PrivacyError("Type an id, an e-mail address or a name.")
    pattern = f"%{query.lower()}%"
    conditions = [func.lower(Customer.email).like(pattern), func.lower(Customer.name).like(pattern)]
    if query.isdigit():
        conditions.append(Customer.id == int(query))
    counts = (
        select(Conversation.customer_id, func.count(Conversation.id).label("n"))
        .group_by(Conversation.customer_id)
        .subquery()
    )
    rows = session.execute(
        select(Customer, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.customer_id == Customer.id)
        .where(or_(*conditions))
        .order_by(Customer.name, Customer.id)
        .limit(SEARCH_LIMIT)
    ).all()
    return [
        {
            "id": c.id,
            "name": c.name,
            "email": c.email,
            "tier": c.tier,
            "conversations": int(n),
        }
        for c, n in rows
    ]


# ---------------------------------------------------------------------------- export


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


def customer_conversation_ids(session: Session, customer_id: int) -> list[str]:
    return list(
        session.scalars(select(Conversation.id).where(Conversation.customer_id == customer_id))
    )


def _tickets_by_email(session: Session, email: str, skip: Sequence[str]) -> list[Ticket]:
    stmt = select(Ticket).where(func.lower(Ticket.email) == email.lower())
    if skip:
        stmt = stmt.where(Ticket.conversation_id.not_in(skip))
    return list(session.scalars(stmt.order_by(Ticket.id)))


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    """A ticket with the e-mails staff sent about it (they hold the customer's words too)."""
    return {**_row(ticket), "replies": [_row(r) for r in ticket.replies]}


def export_customer(session: Session, customer_id: int, actor: int | None = None) -> dict[str, Any]:
    """Everything stored about one customer, as JSON-ready data (audited)."""
    customer = _customer(session, customer_id)
    orders = list(
        session.scalars(select(Order).where(Order.customer_id == customer_id).order_by(Order.id))
    )
    conversations = list(
        session.scalars(
            select(Conversation)
            .where(Conversation.customer_id == customer_id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    bookings = list(
        session.scalars(
            select(Booking).where(Booking.customer_id == customer_id).order_by(Booking.id)
        )
    )
    other_tickets = _tickets_by_email(session, customer.email, [c.id for c in conversations])
    data: dict[str, Any] = {
        "exported_at": _json(utcnow()),
        "customer": _row(customer),
        "orders": [
            {
                **_row(order),
                "items": [_row(item) for item in order.items],
                "returns": [_row(r) for r in order.return_requests],
            }
            for order in orders
        ],
        "bookings": [_row(b) for b in bookings],
        "conversations": [
            {
                **_row(conv),
                "messages": [_row(m) for m in conv.messages],
                "events": [_row(e) for e in conv.events],
                "tickets": [_ticket_row(t) for t in conv.tickets],
            }
            for conv in conversations
        ],
        # Tickets left under the customer's e-mail from an anonymous chat.
        "tickets_by_email": [_ticket_row(t) for t in other_tickets],
    }
    record_audit(
        session,
        actor,
        "export_customer",
        target=f"customer:{customer_id}",
        detail={"conversations": len(conversations), "orders": len(orders)},
    )
    return data


# ---------------------------------------------------------------------------- delete


def delete_conversations(session: Session, conversation_ids: Sequence[str]) -> dict[str, int]:
    """Delete conversations with their messages, events and tickets; returns the counts.

    Explicit deletes rather than relying on ON DELETE CASCADE: SQLite only honours it with
    PRAGMA foreign_keys on, and the counts are wanted anyway.
    """
    counts = {"conversations": 0, "messages": 0, "events": 0, "tickets": 0}
    ids = list(conversation_ids)
    for start in range(0, len(ids), 500):  # keep IN (...) lists a sane size
        chunk = ids[start : start + 500]
        for key, model in (
            ("messages", Message),
            ("events", ConversationEvent),
            ("tickets", Ticket),
            ("conversations", Conversation),
        ):
            column = model.id if model is Conversation else model.conversation_id
            result = session.execute(
                delete(model).where(column.in_(chunk)).execution_options(synchronize_session=False)
            )
            counts[key] += int(result.rowcount)  # type: ignore[attr-defined]
    return counts


def delete_customer(
    session: Session,
    customer_id: int,
    actor: int | None = None,
    *,
    tracker_db: Path | None = None,
) -> dict[str, int]:
    """Erase one customer: conversations (with messages, events, tickets), tickets under
    their e-mail, bookings, orders (with items and returns) and the customer row.

    The audit row holds only the id and the counts, never the personal data itself.
    """
    customer = _customer(session, customer_id)
    conversation_ids = customer_conversation_ids(session, customer_id)
    counts = delete_conversations(session, conversation_ids)
    if tracker_db is not None:
        counts["rasa_events"] = delete_rasa_tracker(tracker_db, conversation_ids)
    by_email = session.execute(
        delete(Ticket)
        .where(func.lower(Ticket.email) == customer.email.lower())
        .execution_options(synchronize_session=False)
    )
    counts["tickets"] += int(by_email.rowcount)  # type: ignore[attr-defined]
    order_ids = list(session.scalars(select(Order.id).where(Order.customer_id == customer_id)))
    if order_ids:
        session.execute(delete(OrderItem).where(OrderItem.order_id.in_(order_ids)))
        session.execute(delete(ReturnRequest).where(ReturnRequest.order_id.in_(order_ids)))
        session.execute(delete(Order).where(Order.id.in_(order_ids)))
    counts["orders"] = len(order_ids)
    bookings = session.execute(delete(Booking).where(Booking.customer_id == customer_id))
    counts["bookings"] = int(bookings.rowcount)  # type: ignore[attr-defined]
    session.execute(delete(Customer).where(Customer.id == customer_id))
    session.expunge(customer)
    counts["customer"] = 1
    record_audit(
        session,
        actor,
        "delete_customer",
        target=f"customer:{customer_id}",
        detail={"counts": dict(counts)},
    )
    return counts


def delete_rasa_tracker(tracker_db: Path, conversation_ids: Sequence[str]) -> int:
    """Delete Rasa's copy of these transcripts from its SQL tracker store (SQLite file).

    Rasa OSS has no HTTP call that forgets a conversation (a `restart` event only appends),
    so this writes to the store directly; call it while Rasa is idle for those senders.
    Returns the number of events deleted, 0 when the file or table does not exist.
    """
    if not conversation_ids or not tracker_db.exists():
        return 0
    with sqlite3.connect(tracker_db) as connection:
        table = connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='events'"
        ).fetchone()
        if table is None:
            return 0
        marks = ",".join("?" for _ in conversation_ids)
        cursor = connection.execute(
            f"DELETE FROM events WHERE sender_id IN ({marks})",
            list(conversation_ids),
        )
        return int(cursor.rowcount)


def audit_entries(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """The audit trail, newest first, as plain data; `actor` is a display name."""
    entries: list[AuditLog] = list_audit(session, limit=max(1, min(limit, 1000)))
    ids = {e.actor_user_id for e in entries if e.actor_user_id is not None}
    names = (
        dict(
            session.execute(
                select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    return [
        {
            "id": e.id,
            "at": _json(e.created_at),
            "actor": names.get(e.actor_user_id, "system")
            if e.actor_user_id is not None
            else "system",
            "actor_id": e.actor_user_id,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
        }
        for e in entries
    ]


def business_vocabulary(session: Session, profile: BusinessProfile) -> Vocabulary:
    """The words masking must leave alone: the assistant's and the shop's names, product
    names, categories and colours, and staff display names (with their first names)."""
    phrases = [profile.bot.name, profile.business.name]
    for name, category, colours in session.execute(
        select(Product.name, Product.category, Product.colours)
    ):
        phrases += [name, category, *(colours or [])]
    for (display_name,) in session.execute(select(StaffUser.display_name)):
        if display_name:
            phrases += [display_name, display_name.split()[0]]
    return Vocabulary(phrases)
