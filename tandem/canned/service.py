"""Canned replies: list for staff; create, edit and delete for the owner; demo defaults.

Titles are unique regardless of case ("Returns" and "returns" are the same entry).
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tandem.canned.models import MAX_TEXT_CHARS, MAX_TITLE_CHARS, CannedReply
from tandem.config import PROJECT_ROOT
from tandem.db import utcnow
from tandem.staff.service import record_audit

DEFAULTS_FILE = PROJECT_ROOT / "data" / "demo" / "canned_replies.csv"


class CannedError(Exception):
    """A canned-reply operation that cannot be done; `status` is the HTTP status."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidReply(CannedError):
    status = 422


class ReplyNotFound(CannedError):
    status = 404

    def __init__(self, reply_id: int) -> None:
        super().__init__(f"No canned reply with id {reply_id}.")


class DuplicateTitle(CannedError):
    status = 409

    def __init__(self, title: str) -> None:
        super().__init__(f'A canned reply titled "{title}" already exists.')


def check(title: str, text: str) -> tuple[str, str]:
    """The cleaned (title, text), or InvalidReply with a sentence saying what is wrong."""
    title, text = title.strip(), text.strip()
    if not title:
        raise InvalidReply("The title is empty.")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidReply(f"The title is {len(title)} characters; the limit is {MAX_TITLE_CHARS}.")
    if not text:
        raise InvalidReply("The text is empty.")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidReply(f"The text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}.")
    return title, text


def list_replies(session: Session) -> list[CannedReply]:
    return list(session.scalars(select(CannedReply).order_by(func.lower(CannedReply.title))))


def get_reply(session: Session, reply_id: int) -> CannedReply:
    reply = session.get(CannedReply, reply_id)
    if reply is None:
        raise ReplyNotFound(reply_id)
    return reply


def _ensure_unique(session: Session, title: str, *, except_id: int | None = None) -> None:
    query = select(CannedReply.id).where(func.lower(CannedReply.title) == title.lower())
    if except_id is not None:
        query = query.where(CannedReply.id != except_id)
    if session.scalars(query).first() is not None:
        raise DuplicateTitle(title)


def _flush(session: Session, title: str) -> None:
    # The unique index settles a race between two owners saving the same title.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise DuplicateTitle(title) from error


def create_reply(
    session: Session, title: str, text: str, *, created_by: int | None = None
) -> CannedReply:
    title, text = check(title, text)
    _ensure_unique(session, title)
    reply = CannedReply(title=title, text=text, created_by=created_by)
    session.add(reply)
    _flush(session, title)
    record_audit(session, created_by, "canned.created", title, {"reply_id": reply.id})
    return reply


def update_reply(
    session: Session, reply_id: int, title: str, text: str, *, actor: int | None = None
) -> CannedReply:
    reply = get_reply(session, reply_id)
    title, text = check(title, text)
    _ensure_unique(session, title, except_id=reply_id)
    reply.title, reply.text, reply.updated_at = title, text, utcnow()
    _flush(session, title)
    record_audit(session, actor, "canned.updated", title, {"reply_id": reply_id})
    return reply


def delete_reply(session: Session, reply_id: int, *, actor: int | None = None) -> None:
    reply = get_reply(session, reply_id)
    title = reply.title
    session.delete(reply)
    session.flush()
    record_audit(session, actor, "canned.deleted", title, {"reply_id": reply_id})


def seed_defaults(session: Session, path: Path = DEFAULTS_FILE) -> int:
    """Load the demo's canned replies (CSV: title,text) once; returns how many were added.

    Does nothing when any canned reply exists, so the owner's edits are never overwritten.
    """
    if session.scalar(select(func.count()).select_from(CannedReply)):
        return 0
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        title, text = check(row["title"], row["text"])
        session.add(CannedReply(title=title, text=text))
    session.flush()
    return len(rows)
