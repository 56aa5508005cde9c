"""Housekeeping: refilling the queue after a restart and re-announcing overdue chats."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from handoff.queue import QueueEntry
from tandem.conversations.models import Conversation
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.desk.core import CoreDesk, last_decision


class HousekeepingMixin(CoreDesk):
    """Keep the queue in step with the database and the SLA."""

    async def resync(self) -> int:
        """After a restart: put back queued conversations the queue does not hold."""
        known = {e.conversation_id for e in await self.queue.entries()}
        missing = await run_in_threadpool(self._queued_decisions, known)
        for conversation_id, decision in missing:
            if await self.queue.assigned_to(conversation_id) is None:
                await self.queue.enqueue(self.rebuild_entry(conversation_id, decision))
        return len(missing)

    def _queued_decisions(self, known: set[str]) -> list[tuple[str, dict[str, Any]]]:
        with session_scope(self.engine) as session:
            ids = session.scalars(
                select(Conversation.id).where(Conversation.state == State.QUEUED.value)
            ).all()
            return [(cid, last_decision(session, cid)) for cid in ids if cid not in known]

    async def announce_overdue(self, sla_seconds: float) -> list[QueueEntry]:
        """Re-announce conversations waiting past the SLA (one process wins each)."""
        overdue = await self.queue.overdue(time.time(), sla_seconds)
        if overdue:
            await self.publisher.to_staff(
                {"type": "sla_overdue", "entries": [entry.to_dict() for entry in overdue]}
            )
            await self.push_positions()
        return overdue
