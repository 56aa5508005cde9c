"""Test helper: a conversation's stored events, read back from the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from tandem.conversations.models import ConversationEvent
from tandem.db import session_scope


def events(
    engine: Engine, conversation_id: str, kind: str | None = None
) -> list[ConversationEvent]:
    """The conversation's events in order, of one `kind` when given."""
    with session_scope(engine) as session:
        query = select(ConversationEvent).where(
            ConversationEvent.conversation_id == conversation_id
        )
        if kind:
            query = query.where(ConversationEvent.kind == kind)
        return list(session.scalars(query.order_by(ConversationEvent.id)))
