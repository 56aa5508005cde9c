"""The desk's shared base `CoreDesk`: its collaborators and what every part of it uses."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from handoff.queue import HandoffQueue, QueueEntry
from tandem.business.profile import BusinessProfile
from tandem.conversations.assistant import Assistant
from tandem.conversations.effects import Publisher
from tandem.conversations.models import ConversationEvent
from tandem.db import session_scope
from tandem.desk.availability import AvailabilityService
from tandem.staff.actor import StaffRef
from tandem.staff.models import StaffUser


class CoreDesk:
    """The services the desk works with, and what every part of it shares."""

    def __init__(
        self,
        engine: Engine,
        assistant: Assistant,
        publisher: Publisher,
        queue: HandoffQueue,
        *,
        profile: Callable[[], BusinessProfile],
        availability: AvailabilityService,
        assignment: str = "claim",
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.assistant = assistant
        self.publisher = publisher
        self.queue = queue
        self.profile = profile
        self.availability = availability
        self.assignment = assignment
        self.clock = clock

    def wait_text(self, seconds: float) -> str:
        profile = self.profile()
        if seconds < 60:
            return profile.say("wait_under_a_minute")
        return profile.say("wait_minutes", minutes=math.ceil(seconds / 60))

    async def push_positions(self) -> None:
        """Tell every waiting customer their place and expected wait (not stored)."""
        profile = self.profile()
        for position, entry in enumerate(await self.queue.entries(), start=1):
            wait = await self.queue.estimated_wait_seconds(position)
            await self.publisher.to_customer(
                entry.conversation_id,
                {
                    "type": "queue",
                    "position": position,
                    "wait_seconds": round(wait),
                    "text": profile.say(
                        "handoff_queue_update", position=position, wait=self.wait_text(wait)
                    ),
                },
            )

    def staff_ref(self, staff_id: int) -> StaffRef:
        with session_scope(self.engine) as session:
            user = session.get_one(StaffUser, staff_id)
            return StaffRef(user.id, user.display_name, user.role, user.capacity)

    @staticmethod
    def rebuild_entry(conversation_id: str, decision: dict[str, Any]) -> QueueEntry:
        return QueueEntry(
            conversation_id=conversation_id,
            priority=int(decision.get("priority", 0)),
            enqueued_at=time.time(),
            reasons=[r.get("text", "") for r in decision.get("reasons", [])],
        )


def last_decision(session: Session, conversation_id: str) -> dict[str, Any]:
    event = session.scalars(
        select(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.kind == "escalation",
        )
        .order_by(ConversationEvent.id.desc())
        .limit(1)
    ).one_or_none()
    return dict(((event.data or {}).get("decision") or {}) if event else {})
