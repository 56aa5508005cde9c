"""Retention: transcripts older than RETENTION_DAYS are deleted (0 keeps them forever)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tandem.config import Settings
from tandem.conversations.models import Conversation, Ticket
from tandem.conversations.states import State
from tandem.db import session_scope, utcnow
from tandem.privacy.service import delete_conversations, delete_rasa_tracker
from tandem.staff.service import record_audit

logger = logging.getLogger(__name__)

# A conversation in these states is a live chat: kept however old its last activity,
# unless it has been idle past the retention period too (abandoned in the queue).
LIVE_STATES = (State.QUEUED.value, State.WITH_STAFF.value)


@dataclass
class PurgeResult:
    conversations: int = 0
    messages: int = 0
    events: int = 0
    tickets: int = 0
    conversation_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def deleted(self) -> int:
        return self.conversations + self.tickets

    def counts(self) -> dict[str, int]:
        return {
            "conversations": self.conversations,
            "messages": self.messages,
            "events": self.events,
            "tickets": self.tickets,
        }


def expired_conversation_ids(session: Session, cutoff: datetime) -> list[str]:
    """Conversations with no activity since `cutoff` and not live with a person.

    Bot chats and closed/offline ones go once idle past the cutoff; queued and with_staff
    chats are kept (someone is on it) - they move on through the desk first.
    """
    stmt = select(Conversation.id).where(
        Conversation.updated_at < cutoff,
        or_(Conversation.closed_at.is_(None), Conversation.closed_at < cutoff),
        Conversation.state.not_in(LIVE_STATES),
    )
    return list(session.scalars(stmt.order_by(Conversation.updated_at)))


def purge_old_transcripts(
    session: Session,
    retention_days: int,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeResult:
    """Delete transcripts idle longer than `retention_days` and done tickets as old.

    Records one audit row (actor: system) when something was deleted. `progress(done,
    total)` is called after each batch (the CLI draws a bar with it).
    """
    result = PurgeResult()
    if retention_days <= 0:
        return result
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    ids = expired_conversation_ids(session, cutoff)
    # Done tickets of conversations that are themselves kept (e.g. reopened) go too.
    expiring = set(ids)
    ticket_ids = [
        ticket_id
        for ticket_id, conversation_id in session.execute(
            select(Ticket.id, Ticket.conversation_id).where(
                Ticket.status == "done", Ticket.updated_at < cutoff
            )
        )
        if conversation_id not in expiring
    ]
    result.conversation_ids = ids
    if dry_run:
        result.conversations = len(ids)
        result.tickets = len(ticket_ids)
        return result
    batch = 200
    for start in range(0, len(ids), batch):
        counts = delete_conversations(session, ids[start : start + batch])
        result.conversations += counts["conversations"]
        result.messages += counts["messages"]
        result.events += counts["events"]
        result.tickets += counts["tickets"]
        if progress is not None:
            progress(min(start + batch, len(ids)), len(ids))
    if ticket_ids:
        deleted = session.execute(
            delete(Ticket)
            .where(Ticket.id.in_(ticket_ids))
            .execution_options(synchronize_session=False)
        )
        result.tickets += int(deleted.rowcount)  # type: ignore[attr-defined]
    if result.deleted:
        record_audit(
            session,
            None,
            "retention_purge",
            target=f"older_than:{cutoff.date().isoformat()}",
            detail={"retention_days": retention_days, **result.counts()},
        )
    return result


def oldest_conversation_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Conversation.created_at)))


def purge_once(
    engine: Engine,
    retention_days: int,
    now: datetime | None = None,
    *,
    tracker_db: Path | None = None,
) -> PurgeResult:
    with session_scope(engine) as session:
        result = purge_old_transcripts(session, retention_days, now)
    if tracker_db is not None:
        delete_rasa_tracker(tracker_db, result.conversation_ids)
    return result


async def retention_loop(
    engine: Engine, settings: Settings, interval_seconds: float = 3600
) -> None:
    """Purge now and then every `interval_seconds`; errors are logged and the loop goes on.

    Start it from the app's lifespan as a task and cancel it on shutdown.
    """
    if settings.retention_days <= 0:
        logger.info("retention: RETENTION_DAYS=0, transcripts are kept forever")
        return
    while True:
        try:
            result = await run_in_threadpool(
                partial(purge_once, tracker_db=settings.rasa_tracker_db),
                engine,
                settings.retention_days,
            )
            if result.deleted:
                logger.info(
                    "retention: deleted %d conversation(s), %d ticket(s) older than %d days",
                    result.conversations,
                    result.tickets,
                    settings.retention_days,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("retention: purge failed; trying again in %ss", interval_seconds)
        await asyncio.sleep(interval_seconds)
