"""Table: ticket_replies, the log of e-mails staff sent for a ticket.

The tickets themselves are the `tickets` table (tandem/conversations/models.py), filed by
the gateway's offline fallback; this domain adds the inbox's columns and this reply log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tandem.db import Base, UTCDateTime, utcnow


class TicketReply(Base):
    __tablename__ = "ticket_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(250))  # the e-mail's Message-ID header
    transport: Mapped[str] = mapped_column(String(10))  # "file" (the outbox) or "smtp"
    location: Mapped[str | None] = mapped_column(Text)  # the outbox file, for "file"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
