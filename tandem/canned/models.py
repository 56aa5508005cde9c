"""Table: canned_replies.

Importing this module only declares the table on `tandem.db.Base`; the migration
0002_canned_replies creates it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tandem.db import Base, UTCDateTime, utcnow

MAX_TITLE_CHARS = 80
MAX_TEXT_CHARS = 2000


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique so the picker never shows two entries a person cannot tell apart.
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # NULL: seeded, or the author's account was deleted (the reply stays).
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )

    def view(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "text": self.text}
