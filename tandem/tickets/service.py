"""The ticket inbox over storage: list, read (audited), claim, reply by e-mail, mark done.

Tickets are filed by the gateway's offline fallback (the `tickets` table): status
`awaiting_contact` while the customer is still giving their details, then `open`. Here
staff take one (`in_progress`, assigned to them) and finish it (`done`, with the time, for
the reports' time to resolution). The inbox's "open" filter shows `awaiting_contact` too:
the request is there even if the customer left before giving a contact.

Reading a ticket shows the customer's contact, so every read is a row in the audit log.
A reply is composed here, sent by the caller (tandem/tickets/mail.py, outside any database
transaction), then recorded with `record_reply`. Errors are `TicketError`s with the HTTP
status the web layer answers with; this module has no web code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.conversations import service as conversations
from tandem.conversations.models import Conversation, Message, Ticket
from tandem.db import utcnow
from tandem.staff.models import StaffUser
from tandem.staff.service import record_audit
from tandem.tickets.mail import Sent, compose
from tandem.tickets.models import TicketReply

OPEN, IN_PROGRESS, DONE = "open", "in_progress", "done"
FILTERS = (OPEN, IN_PROGRESS, DONE)
# The stored statuses behind each filter of the inbox.
_STORED = {OPEN: ("awaiting_contact", OPEN), IN_PROGRESS: (IN_PROGRESS,), DONE: (DONE,)}
MAX_BODY_CHARS = 10_000
MAX_SUBJECT_CHARS = 200
MAX_RESOLUTION_CHARS = 2_000
EXCERPT_CHARS = 160
TRANSCRIPT_MESSAGES = 60
LIST_LIMIT = 200


class TicketError(Exception):
    """A ticket action that cannot be done; `status` is the HTTP status to answer with."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TicketNotFound(TicketError):
    status = 404

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"There is no ticket #{ticket_id}.")


class TicketConflict(TicketError):
    """The ticket's state does not allow it (done, no e-mail address, taken...)."""

    status = 409


class NotYours(TicketError):
    status = 403


class BadInput(TicketError):
    status = 422


@dataclass(frozen=True)
class Actor:
    """The staff member acting (the owner may act on colleagues' tickets)."""

    id: int
    name: str
    is_owner: bool = False

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


def inbox_status(stored: str) -> str:
    """The inbox's word for a stored status (awaiting_contact shows as open)."""
    return OPEN if stored == "awaiting_contact" else stored


# ------------------------------------------------------------------ reading


def _get(session: Session, ticket_id: int, *, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id)
    if lock:
        query = query.with_for_update()
    ticket = session.scalars(query).one_or_none()
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


def _request_messages(session: Session, ticket: Ticket) -> list[Message]:
    """What the customer asked: their messages on the ticket, minus the contact form's
    answers (stored as `held`: a name, an address)."""
    if not ticket.message_ids:
        return []
    found = session.scalars(
        select(Message).where(
            Message.id.in_(ticket.message_ids),
            Message.sender == "customer",
            Message.status != "held",
        )
    )
    return sorted(found, key=lambda m: m.id)


def _excerpt(messages: list[Message]) -> str:
    text = " / ".join(m.text.strip() for m in messages if m.text.strip())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(wanted))
    )
    return {row.id: row.display_name for row in rows}


def _summary(
    ticket: Ticket, request: list[Message], names: dict[int, str], replies: int
) -> dict[str, Any]:
    """A ticket as the list shows it: no contact details (those are read one at a time)."""
    assigned = ticket.assigned_staff_id
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "status": inbox_status(ticket.status),
        "awaiting_contact": ticket.status == "awaiting_contact",
        "request_excerpt": _excerpt(request),
        "reasons": list(ticket.reasons or []),
        "why_offline": ticket.why_offline,
        "has_email": bool(ticket.email),
        "assigned": {"id": assigned, "name": names.get(assigned, f"staff #{assigned}")}
        if assigned is not None
        else None,
        "replies": replies,
        "created_at": _iso(ticket.created_at),
        "reply_by": _iso(ticket.reply_by),
        "claimed_at": _iso(ticket.claimed_at),
        "resolved_at": _iso(ticket.resolved_at),
    }


def list_tickets(
    session: Session,
    *,
    status: str | None = None,
    assigned_to: int | None = None,
    limit: int = LIST_LIMIT,
) -> dict[str, Any]:
    """Tickets, newest first (open ones by age, oldest first), with a count per filter."""
    if status is not None and status not in FILTERS:
        raise BadInput(f"Unknown status {status!r}; use one of: {', '.join(FILTERS)}.")
    query = select(Ticket)
    if status is not None:
        query = query.where(Ticket.status.in_(_STORED[status]))
    if assigned_to is not None:
        query = query.where(Ticket.assigned_staff_id == assigned_to)
    # Waiting work is served oldest first; finished work is read newest first.
    order = Ticket.id.desc() if status == DONE else Ticket.id
    tickets = list(session.scalars(query.order_by(order).limit(max(1, min(limit, LIST_LIMIT)))))
    names = _names(session, {t.assigned_staff_id for t in tickets})
    reply_counts = dict(
        session.execute(
            select(TicketReply.ticket_id, func.count())
            .where(TicketReply.ticket_id.in_([t.id for t in tickets]))
            .group_by(TicketReply.ticket_id)
        ).all()
    )
    counts = {name: 0 for name in FILTERS}
    for stored, count in session.execute(
        select(Ticket.status, func.count()).group_by(Ticket.status)
    ).all():
        if inbox_status(stored) in counts:
            counts[inbox_status(stored)] += count
    return {
        "tickets": [
            _summary(t, _request_messages(session, t), names, reply_counts.get(t.id, 0))
            for t in tickets
        ],
        "counts": counts,
    }


def ticket_detail(session: Session, ticket_id: int, viewer: Actor) -> dict[str, Any]:
    """One ticket with the request, the transcript and the contact; the read is audited."""
    ticket = _get(session, ticket_id)
    request = _request_messages(session, ticket)
    replies = list(
        session.scalars(
            select(TicketReply).where(TicketReply.ticket_id == ticket.id).order_by(TicketReply.id)
        )
    )
    names = _names(session, {ticket.assigned_staff_id, *(r.staff_id for r in replies)})
    transcript = [
        {"id": m.id, "sender": m.sender, "text": m.text, "created_at": _iso(m.created_at)}
        for m in session.scalars(
            select(Message)
            .where(Message.conversation_id == ticket.conversation_id)
            .order_by(Message.id.desc())
            .limit(TRANSCRIPT_MESSAGES)
        )
        if not (m.payload or {}).get("internal")  # staff notes stay in the console
    ][::-1]
    record_audit(
        session,
        viewer.id,
        "ticket.contact_viewed",
        target=f"ticket:{ticket.id}",
        detail={"ticket_id": ticket.id, "conversation_id": ticket.conversation_id},
    )
    return _summary(ticket, request, names, len(replies)) | {
        "request": [
            {"id": m.id, "text": m.text, "created_at": _iso(m.created_at)} for m in request
        ],
        "contact": {"name": ticket.name, "email": ticket.email, "phone": ticket.phone},
        "transcript": transcript,
        "resolution": ticket.resolution,
        "reply_log": [
            {
                "id": r.id,
                "staff": {"id": r.staff_id, "name": names.get(r.staff_id or 0, "a former member")},
                "to": r.to_address,
                "subject": r.subject,
                "body": r.body,
                "transport": r.transport,
                "sent_at": _iso(r.created_at),
            }
            for r in replies
        ],
    }


# ------------------------------------------------------------------ working a ticket


def _event(session: Session, ticket: Ticket, kind: str, actor: Actor, **data: Any) -> None:
    conversation = session.get_one(Conversation, ticket.conversation_id)
    conversations.record_event(
        session,
        conversation,
        kind=kind,
        actor=actor.actor,
        reason=f"ticket #{ticket.id}",
        data={"ticket_id": ticket.id, **data},
    )


def _check_may_work(ticket: Ticket, actor: Actor) -> None:
    if ticket.status == DONE:
        raise TicketConflict(f"Ticket #{ticket.id} is done already.")
    holder = ticket.assigned_staff_id
    if holder is not None and holder != actor.id and not actor.is_owner:
        raise NotYours(f"Ticket #{ticket.id} is a colleague's; ask them or the owner.")


def _take(session: Session, ticket: Ticket, actor: Actor) -> None:
    ticket.status = IN_PROGRESS
    ticket.assigned_staff_id = actor.id
    ticket.claimed_at = utcnow()
    _event(session, ticket, "ticket_claimed", actor, staff_name=actor.name)


def claim(session: Session, ticket_id: int, actor: Actor) -> dict[str, Any]:
    """Take the ticket. Someone else's: 409 (the owner may take it over); done: 409."""
    ticket = _get(session, ticket_id, lock=True)
    if ticket.status == DONE:
        raise TicketConflict(f"Ticket #{ticket.id} is done already.")
    holder = ticket.assigned_staff_id
    if holder == actor.id and ticket.status == IN_PROGRESS:
        return _summary_of(session, ticket)
    if holder is not None and holder != actor.id and not actor.is_owner:
        name = _names(session, {holder}).get(holder, "a colleague")
        raise TicketConflict(f"{name} took ticket #{ticket.id} already.")
    _take(session, ticket, actor)
    return _summary_of(session, ticket)


def _summary_of(session: Session, ticket: Ticket) -> dict[str, Any]:
    session.flush()
    replies = session.scalar(
        select(func.count()).select_from(TicketReply).where(TicketReply.ticket_id == ticket.id)
    )
    names = _names(session, {ticket.assigned_staff_id})
    return _summary(ticket, _request_messages(session, ticket), names, int(replies or 0))


def prepare_reply(
    session: Session,
    ticket_id: int,
    actor: Actor,
    *,
    body: str,
    subject: str | None,
    sender: str,
    sender_name: str,
) -> EmailMessage:
    """The e-mail to send, after checking the ticket can be answered by e-mail."""
    body = (body or "").strip()
    if not body:
        raise BadInput("Write the reply first.")
    if len(body) > MAX_BODY_CHARS:
        raise BadInput(f"The reply is over {MAX_BODY_CHARS} characters.")
    subject = " ".join((subject or "").split())
    if len(subject) > MAX_SUBJECT_CHARS:
        raise BadInput(f"The subject is over {MAX_SUBJECT_CHARS} characters.")
    ticket = _get(session, ticket_id)
    _check_may_work(ticket, actor)
    if not ticket.email:
        how = f" Call them on {ticket.phone} instead." if ticket.phone else ""
        raise TicketConflict(f"Ticket #{ticket.id} has no e-mail address.{how}")
    return compose(
        sender=sender,
        sender_name=sender_name,
        to=ticket.email,
        to_name=ticket.name,
        subject=subject or f"Your request to {sender_name} (ticket #{ticket.id})",
        body=body,
        reference=f"ticket-{ticket.id}",
    )


def record_reply(
    session: Session, ticket_id: int, actor: Actor, message: EmailMessage, sent: Sent
) -> dict[str, Any]:
    """Log a reply that was sent; an unclaimed ticket becomes the sender's."""
    ticket = _get(session, ticket_id, lock=True)
    # Done meanwhile: the mail went out all the same, so it is logged all the same.
    if ticket.status in _STORED[OPEN]:
        _take(session, ticket, actor)
    reply = TicketReply(
        ticket_id=ticket.id,
        staff_id=actor.id,
        to_address=str(message["To"]),
        subject=str(message["Subject"]),
        body=message.get_content().rstrip("\n"),
        message_id=str(message["Message-ID"]),
        transport=sent.transport,
        location=sent.location,
    )
    session.add(reply)
    session.flush()
    _event(session, ticket, "ticket_replied", actor, reply_id=reply.id, transport=sent.transport)
    return {
        "reply": {
            "id": reply.id,
            "to": reply.to_address,
            "subject": reply.subject,
            "transport": reply.transport,
            "sent_at": _iso(reply.created_at),
        },
        "ticket": _summary_of(session, ticket),
    }


def mark_done(
    session: Session, ticket_id: int, actor: Actor, resolution: str | None = None
) -> dict[str, Any]:
    """Finish the ticket (with an optional note); the time feeds time to resolution."""
    note = (resolution or "").strip() or None
    if note is not None and len(note) > MAX_RESOLUTION_CHARS:
        raise BadInput(f"The note is over {MAX_RESOLUTION_CHARS} characters.")
    ticket = _get(session, ticket_id, lock=True)
    _check_may_work(ticket, actor)
    if ticket.assigned_staff_id is None:
        ticket.assigned_staff_id = actor.id
    ticket.resolution = note
    ticket.resolved_at = utcnow()
    ticket.status = DONE
    _event(session, ticket, "ticket_done", actor, resolution=note)
    return _summary_of(session, ticket)
