"""Conversation logic on top of storage: every state change goes through `transition`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff.state import HandoffState
from sentiment.mood import Mood
from tandem.conversations.models import Conversation, ConversationEvent, Message
from tandem.conversations.states import State, check_transition
from tandem.db import utcnow


def load_handoff(conversation: Conversation) -> HandoffState:
    """The conversation's typed handoff state (the only reader of the column)."""
    return HandoffState.from_stored(conversation.handoff)


def save_handoff(conversation: Conversation, state: HandoffState) -> None:
    """Store the handoff state (the only writer of the column)."""
    conversation.handoff = state.to_stored()


def load_mood(conversation: Conversation) -> Mood:
    return Mood.from_dict(conversation.mood or {})


class ConversationNotFound(LookupError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id!r}")
        self.conversation_id = conversation_id


def create_conversation(
    session: Session,
    *,
    channel: str = "web",
    customer_id: int | None = None,
    verified_via: str | None = None,
) -> Conversation:
    conversation = Conversation(
        channel=channel,
        customer_id=customer_id,
        customer_verified=customer_id is not None and verified_via is not None,
        verified_via=verified_via,
    )
    session.add(conversation)
    session.flush()
    record_event(
        session,
        conversation,
        kind="created",
        actor="customer",
        to_state=conversation.state,
        data={"channel": channel, "verified_customer_id": customer_id},
    )
    return conversation


def get_conversation(session: Session, conversation_id: str, *, lock: bool = False) -> Conversation:
    query = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        query = query.with_for_update()
    conversation = session.scalars(query).one_or_none()
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_token(conversation: Conversation) -> str:
    """A new capability token for the customer's side; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    conversation.token_hash = _token_hash(token)
    return token


def get_with_token(session: Session, conversation_id: str, token: str) -> Conversation:
    """The conversation if `token` is its token; ConversationNotFound otherwise.

    A wrong token and an unknown id look the same, so neither reveals the other.
    """
    conversation = session.get(Conversation, conversation_id)
    if (
        conversation is None
        or conversation.token_hash is None
        or not hmac.compare_digest(conversation.token_hash, _token_hash(token))
    ):
        raise ConversationNotFound(conversation_id)
    return conversation


def record_event(
    session: Session,
    conversation: Conversation,
    *,
    kind: str,
    actor: str,
    reason: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> ConversationEvent:
    """One row of the conversation's history; `at` back-dates it (the demo history)."""
    event = ConversationEvent(
        conversation_id=conversation.id,
        kind=kind,
        actor=actor,
        reason=reason,
        from_state=from_state,
        to_state=to_state,
        data=data,
    )
    if at is not None:
        event.created_at = at
    session.add(event)
    session.flush()
    return event


def transition(
    session: Session,
    conversation: Conversation,
    target: State,
    *,
    actor: str,
    reason: str,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> ConversationEvent:
    """Move the conversation to `target`, or raise InvalidTransition; one event row per move.

    Storage only: the named moves in `tandem.conversations.transitions` call it.
    """
    current = State(conversation.state)
    check_transition(current, target)
    when = at or utcnow()
    conversation.state = target.value
    conversation.updated_at = when
    conversation.closed_at = when if target is State.CLOSED else None
    return record_event(
        session,
        conversation,
        kind="state_changed",
        actor=actor,
        reason=reason,
        from_state=current.value,
        to_state=target.value,
        data=data,
        at=at,
    )


def add_message(
    session: Session,
    conversation: Conversation,
    *,
    sender: str,
    text: str,
    payload: dict[str, Any] | None = None,
    client_message_id: str | None = None,
    status: str = "received",
    at: datetime | None = None,
) -> tuple[Message, bool]:
    """Store a message at once; returns (message, created). A resent client id is stored once."""
    if client_message_id is not None:
        existing = find_by_client_id(session, conversation.id, client_message_id)
        if existing is not None:
            return existing, False
    message = Message(
        conversation_id=conversation.id,
        sender=sender,
        text=text,
        payload=payload,
        client_message_id=client_message_id,
        status=status,
    )
    if at is not None:
        message.created_at = at
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Two copies of one widget message raced; the first one stored wins.
        existing = find_by_client_id(session, conversation.id, client_message_id or "")
        if existing is None:
            raise
        return existing, False
    conversation.updated_at = at or utcnow()
    return message, True


def find_by_client_id(
    session: Session, conversation_id: str, client_message_id: str
) -> Message | None:
    return session.scalars(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.client_message_id == client_message_id,
        )
    ).one_or_none()


def record_nlu(message: Message, parse_data: dict[str, Any]) -> None:
    """Keep Rasa's reading of a customer message: intent, confidence, entities."""
    intent = parse_data.get("intent") or {}
    message.intent = intent.get("name")
    confidence = intent.get("confidence")
    message.intent_confidence = float(confidence) if confidence is not None else None
    message.entities = [
        {key: entity.get(key) for key in ("entity", "value", "start", "end", "extractor")}
        for entity in parse_data.get("entities") or []
    ]


def mark_identified(
    session: Session,
    conversation: Conversation,
    *,
    customer_id: int,
    via: str,
    at: datetime | None = None,
) -> None:
    if conversation.customer_id == customer_id and conversation.customer_verified:
        return
    conversation.customer_id = customer_id
    conversation.customer_verified = True
    conversation.verified_via = via
    record_event(
        session,
        conversation,
        kind="identified",
        actor="bot",
        reason=f"customer verified by {via}",
        data={"customer_id": customer_id},
        at=at,
    )


def list_messages(session: Session, conversation_id: str, *, after_id: int = 0) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.id > after_id)
            .order_by(Message.id)
        )
    )
