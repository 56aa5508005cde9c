"""Tables: conversations, messages, conversation_events and tickets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from tandem.conversations.states import State
from tandem.db import Base, UTCDateTime, utcnow


def new_conversation_id() -> str:
    return uuid.uuid4().hex


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_conversation_id)
    state: Mapped[str] = mapped_column(String(20), default=State.BOT.value, index=True)
    channel: Mapped[str] = mapped_column(String(20), default="web")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    customer_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_via: Mapped[str | None] = mapped_column(String(30))
    assigned_staff_id: Mapped[int | None] = mapped_column(Integer)
    # sha256 of the customer's capability token (see service.issue_token); never the token.
    token_hash: Mapped[str | None] = mapped_column(String(64))
    # A keyed hash of the client address that started it (not the address): the action
    # server counts failed order checks per client across conversations with it.
    client_tag: Mapped[str | None] = mapped_column(String(24))
    mood: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # A handoff.state.HandoffState, read and written only through
    # conversations.service.load_handoff / save_handoff (see docs/ASSISTANT.md).
    handoff: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    csat: Mapped[int | None] = mapped_column(Integer)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[ConversationEvent]] = relationship(
        back_populates="conversation",
        order_by="ConversationEvent.id",
        cascade="all, delete-orphan",
    )
    tickets: Mapped[list[Ticket]] = relationship(
        back_populates="conversation", order_by="Ticket.id", cascade="all, delete-orphan"
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "ix_messages_conversation_client_id",
            "conversation_id",
            "client_message_id",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(String(10))  # customer, bot, staff, system
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True)
    )  # buttons, custom data
    # Set by the widget so that a resent message is stored once.
    client_message_id: Mapped[str | None] = mapped_column(String(64))
    # What happened to a customer message: received, answered, held, bot_unavailable.
    status: Mapped[str] = mapped_column(String(20), default="received")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    intent: Mapped[str | None] = mapped_column(String(64), index=True)
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))

    sentiment_negative: Mapped[float | None] = mapped_column(Float)
    sentiment_neutral: Mapped[float | None] = mapped_column(Float)
    sentiment_positive: Mapped[float | None] = mapped_column(Float)
    sentiment_score: Mapped[float | None] = mapped_column(Float)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class ConversationEvent(Base):
    """One row per state change or decision: who, when, why. Reports read these."""

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(40))  # customer, bot, system, staff:<id>
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    conversation: Mapped[Conversation] = relationship(back_populates="events")


class Ticket(Base):
    """A request left for staff when nobody could take the chat (the offline fallback).

    Created the moment the conversation goes offline, so the question is kept even if the
    customer leaves before giving contact details; `message_ids` point at their messages.
    """

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # awaiting_contact -> open -> in_progress -> done (the staff inbox, tandem/tickets)
    status: Mapped[str] = mapped_column(String(20), default="awaiting_contact", index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    reasons: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    message_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    why_offline: Mapped[str | None] = mapped_column(String(200))
    reply_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The inbox: who took the ticket and when, and when it was done (reports' time to
    # resolution). SET NULL keeps the ticket if the account goes.
    assigned_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)

    conversation: Mapped[Conversation] = relationship(back_populates="tickets")
    # The e-mails staff sent (tandem/tickets/models.py); the database deletes them with it.
    replies: Mapped[list[TicketReply]] = relationship(order_by="TicketReply.id", viewonly=True)

    @validates("status")
    def _one_vocabulary(self, _key: str, status: str) -> str:
        # Closing the conversation marks its tickets "resolved" (the desk's older word):
        # stored as "done", with the time, so the inbox and the reports see one vocabulary.
        if status == "resolved":
            status = "done"
        if status == "done" and self.resolved_at is None:
            self.resolved_at = utcnow()
        return status


# Registers TicketReply for `Ticket.replies` wherever these tables are used (the action
# server imports this module alone). It only imports tandem.db: no cycle.
from tandem.tickets.models import TicketReply  # noqa: E402
