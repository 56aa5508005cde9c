"""The named moves of the state machine (see `states.MOVES`), one function each.

Every move checks its preconditions, changes the state through `service.transition`
(one `state_changed` event row), writes what goes with it (escalation record, ticket,
system message) and returns its `Effects`, which the caller publishes after the commit.
They run inside the caller's transaction and take `at` so that the demo-history seeder
can back-date them; the live desk leaves it unset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from handoff.policy import Decision
from handoff.state import HandoffState
from tandem.business.profile import BusinessProfile
from tandem.conversations import service
from tandem.conversations.effects import Effects
from tandem.conversations.models import Conversation, Message, Ticket
from tandem.conversations.states import Move, State, check_move
from tandem.db import utcnow
from tandem.desk.errors import Conflict, NotHolder
from tandem.staff.actor import Actor, StaffRef

# The event row of a move that keeps the state (reports count it by this kind).
_SAME_STATE_EVENT = {Move.TRANSFER: "transferred"}


def _move(
    session: Session,
    conversation: Conversation,
    move: Move,
    *,
    actor: str,
    reason: str,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    target = check_move(move, State(conversation.state))
    if target is State(conversation.state):
        # A move that keeps the state (transfer) is still one event row.
        kind = _SAME_STATE_EVENT.get(move, move.value)
        service.record_event(
            session, conversation, kind=kind, actor=actor, reason=reason, data=data, at=at
        )
        return
    data = {"move": move.value, **(data or {})}
    service.transition(
        session, conversation, target, actor=actor, reason=reason, data=data, at=at
    )


def _say(
    session: Session,
    conversation: Conversation,
    effects: Effects,
    sender: str,
    text: str,
    payload: dict[str, Any],
    at: datetime | None,
) -> Message:
    message, _ = service.add_message(
        session, conversation, sender=sender, text=text, payload=payload, at=at
    )
    session.flush()
    effects.say(message)
    return message


def record_escalation(
    session: Session,
    conversation: Conversation,
    decision: Decision,
    *,
    actor: str,
    at: datetime | None = None,
) -> None:
    """The handoff decision with its reasons and the mood at that moment (reports read it)."""
    mood = service.load_mood(conversation)
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
            "mood": mood.brief() if conversation.mood else None,
        },
        at=at,
    )


def handle_seconds(conversation: Conversation, now: datetime | None = None) -> float | None:
    """How long a person has had the conversation (None if nobody claimed it)."""
    claimed = service.load_handoff(conversation).claimed_at
    if claimed is None:
        return None
    return round(max(0.0, (now or utcnow()).timestamp() - claimed), 3)


def check_holder(conversation: Conversation, staff: Actor, *, owner_ok: bool = True) -> None:
    """Only the person holding a conversation (or the owner) may act in it."""
    if conversation.state != State.WITH_STAFF:
        raise Conflict(f"The conversation is {conversation.state}, not with staff.")
    if conversation.assigned_staff_id != staff.id and not (owner_ok and staff.is_owner):
        raise NotHolder("This conversation is assigned to someone else.")


# --------------------------------------------------------------------------- the moves


def escalate(
    session: Session,
    conversation: Conversation,
    decision: Decision,
    *,
    actor: str,
    at: datetime | None = None,
) -> Effects:
    """bot -> queued. The queue position and the staff alert come from the desk."""
    _move(
        session,
        conversation,
        Move.ESCALATE,
        actor=actor,
        reason=decision.summary,
        data=decision.to_dict(),
        at=at,
    )
    record_escalation(session, conversation, decision, actor=actor, at=at)
    state = service.load_handoff(conversation)
    state.queued_ack = False  # a new wait: the next message typed is acknowledged once
    service.save_handoff(conversation, state)
    return Effects(conversation.id)


def file_ticket(
    session: Session,
    conversation: Conversation,
    decision: Decision,
    profile: BusinessProfile,
    *,
    why: str,
    reply_by: datetime | None,
    actor: str,
    at: datetime | None = None,
) -> tuple[Effects, Ticket]:
    """bot | queued -> offline_ticket: nobody can take it now, so a ticket and its form."""
    _move(
        session,
        conversation,
        Move.FILE_TICKET,
        actor=actor,
        reason=f"{decision.summary} (nobody available: {why})",
        data=decision.to_dict() | {"offline": why},
        at=at,
    )
    record_escalation(session, conversation, decision, actor=actor, at=at)
    customer_ids = [
        m.id for m in service.list_messages(session, conversation.id) if m.sender == "customer"
    ]
    ticket = Ticket(
        conversation_id=conversation.id,
        reasons=[r.text for r in decision.reasons],
        message_ids=customer_ids,
        why_offline=why[:200],
        reply_by=reply_by,
    )
    if at is not None:
        ticket.created_at = ticket.updated_at = at
    session.add(ticket)
    session.flush()
    state = service.load_handoff(conversation)
    state.offline_step, state.ticket_id, state.offline_reasked = "name", ticket.id, None
    service.save_handoff(conversation, state)
    effects = Effects(conversation.id)
    _say(
        session,
        conversation,
        effects,
        "bot",
        profile.say("handoff_offline_ask_name", why=why),
        {"kind": "offline_contact", "ticket_id": ticket.id},
        at,
    )
    effects.tell_staff({"type": "ticket", "ticket_id": ticket.id})
    return effects, ticket


def claim(
    session: Session,
    conversation: Conversation,
    staff: Actor,
    profile: BusinessProfile,
    *,
    change: str = "claimed",
    at: datetime | None = None,
) -> Effects:
    """queued -> with_staff: a person takes the conversation."""
    if conversation.state != State.QUEUED:
        # The queue's claim is atomic; this guards the database too, in case the queue
        # and the database ever disagree.
        raise Conflict(f"Cannot claim: the conversation is {conversation.state}.")
    _move(
        session,
        conversation,
        Move.CLAIM,
        actor=staff.actor,
        reason=f"claimed by {staff.display_name}",
        data={"staff_name": staff.display_name},
        at=at,
    )
    conversation.assigned_staff_id = staff.id
    state = service.load_handoff(conversation)
    state.claimed_at = (at or utcnow()).timestamp()
    service.save_handoff(conversation, state)
    effects = Effects(conversation.id)
    _say(
        session,
        conversation,
        effects,
        "system",
        profile.say("handoff_staff_joined", staff_name=staff.display_name),
        {"kind": "staff_joined", "staff_name": staff.display_name},
        at,
    )
    effects.tell_staff({"type": "queue_changed", "change": change, "staff_id": staff.id})
    return effects


def transfer(
    session: Session,
    conversation: Conversation,
    staff: StaffRef,
    to: StaffRef,
    profile: BusinessProfile,
) -> Effects:
    """with_staff -> with_staff: another person takes over."""
    check_holder(conversation, staff)
    _move(
        session,
        conversation,
        Move.TRANSFER,
        actor=staff.actor,
        reason=f"transferred to {to.display_name}",
        data={"from_staff_id": staff.id, "to_staff_id": to.id},
    )
    conversation.assigned_staff_id = to.id
    effects = Effects(conversation.id)
    _say(
        session,
        conversation,
        effects,
        "system",
        profile.say("handoff_transferred", staff_name=to.display_name),
        {"kind": "transferred", "staff_name": to.display_name},
        None,
    )
    effects.tell_staff(
        {
            "type": "queue_changed",
            "change": "transferred",
            "staff_id": to.id,
            "assigned_staff_id": to.id,
        }
    )
    return effects


def return_to_bot(
    session: Session, conversation: Conversation, staff: StaffRef, profile: BusinessProfile
) -> tuple[Effects, float | None]:
    """with_staff -> bot, with a fresh Mood; returns the effects and the handling time."""
    check_holder(conversation, staff)
    handled = handle_seconds(conversation)
    previous_mood = service.load_mood(conversation).snapshot()
    _move(
        session,
        conversation,
        Move.RETURN_TO_BOT,
        actor=staff.actor,
        reason=f"returned to the bot by {staff.display_name}",
        data={"handle_seconds": handled, "mood_before": previous_mood},
    )
    conversation.assigned_staff_id = None
    # A fresh start: the frustration that caused the handoff was dealt with by a person,
    # and must not send the next routine question straight back.
    conversation.mood = None
    # Remembered so that this person may still wrap the chat up (close + CSAT).
    service.save_handoff(conversation, HandoffState(returned_by=staff.id))
    effects = Effects(conversation.id)
    _say(
        session,
        conversation,
        effects,
        "bot",
        profile.say("handoff_returned"),
        {"kind": "returned_to_bot"},
        None,
    )
    effects.tell_staff({"type": "queue_changed", "change": "returned_to_bot"})
    return effects, handled


def leave_ticket(
    session: Session,
    conversation: Conversation,
    *,
    reason: str,
    data: dict[str, Any] | None = None,
) -> Effects:
    """offline_ticket -> bot: the form is done or declined, or the customer writes on."""
    _move(
        session, conversation, Move.LEAVE_TICKET, actor="customer", reason=reason, data=data
    )
    state = service.load_handoff(conversation)
    state.offline_step = state.offline_reasked = None
    service.save_handoff(conversation, state)
    return Effects(conversation.id)


def close(
    session: Session,
    conversation: Conversation,
    staff: Actor,
    resolution: str,
    profile: BusinessProfile,
    *,
    at: datetime | None = None,
    handled: float | None = None,
) -> tuple[Effects, float | None]:
    """Any open state -> closed, by the person who may: returns effects and handling time.

    `handled` overrides the handling time (the demo history measures its own)."""
    state = State(conversation.state)
    if state is State.WITH_STAFF:
        check_holder(conversation, staff)
    elif state is State.BOT:
        # Wrap-up after a return to the bot: whoever returned it, or the owner.
        returned_by = service.load_handoff(conversation).returned_by
        if returned_by is None or (returned_by != staff.id and not staff.is_owner):
            raise Conflict(
                "The bot has this conversation; only staff who handled it can close it."
            )
    elif state is State.CLOSED:
        raise Conflict(f"The conversation is {conversation.state}; nothing to close.")
    if handled is None:
        handled = handle_seconds(conversation, at)
    _move(
        session,
        conversation,
        Move.CLOSE,
        actor=staff.actor,
        reason=resolution,
        data={"resolution": resolution, "handle_seconds": handled},
        at=at,
    )
    conversation.resolution = resolution
    for ticket in conversation.tickets:
        if ticket.status != "resolved":
            ticket.status = "resolved"
            if at is not None:
                ticket.updated_at = ticket.resolved_at = at
    effects = Effects(conversation.id)
    _say(
        session,
        conversation,
        effects,
        "system",
        profile.say("handoff_csat"),
        {"kind": "csat_request"},
        at,
    )
    effects.tell_staff({"type": "queue_changed", "change": "closed"})
    return effects, handled


def reopen(session: Session, conversation: Conversation) -> Effects:
    """closed -> bot: the customer wrote again."""
    _move(
        session,
        conversation,
        Move.REOPEN,
        actor="customer",
        reason="the customer wrote again after the conversation was closed",
    )
    return Effects(conversation.id)
