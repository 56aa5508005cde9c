"""The desk's shared base `CoreDesk` (services, publishing, availability, shared storage
steps), with `DeskError`, `StaffRef` and the small helpers the other modules use."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.rasa_client import RasaClient
from bot.serializers import message_view
from handoff.policy import Decision
from handoff.queue import HandoffQueue, QueueEntry
from sentiment.mood import Mood
from tandem.bus import EventBus, conversation_topic
from tandem.business.profile import BusinessProfile
from tandem.conversations import service
from tandem.conversations.models import Conversation, ConversationEvent
from tandem.conversations.states import State
from tandem.db import session_scope, utcnow

logger = logging.getLogger(__name__)

STAFF_TOPIC = "staff"
# Intents that carry no request of their own: the summary and the task tracking skip them.
_FILLER_INTENTS = frozenset(
    {"greet", "goodbye", "thanks", "affirm", "deny", "inform", "stop", "bot_challenge"}
)


class DeskError(Exception):
    """A staff action that cannot be done; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class StaffRef:
    """Who acts (copied from the logged-in staff member)."""

    id: int
    display_name: str
    role: str
    capacity: int

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"

    @property
    def queue_id(self) -> str:
        return str(self.id)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def handoff_data(conversation: Conversation) -> dict[str, Any]:
    return dict(conversation.handoff or {})


class CoreDesk:
    """The services the desk works with, and what every part of it shares."""

    engine: Engine
    rasa: RasaClient
    bus: EventBus
    queue: HandoffQueue
    profile: Callable[[], BusinessProfile]
    staff_hours: str
    assignment: str
    clock: Callable[[], datetime]

    def __init__(
        self,
        engine: Engine,
        rasa: RasaClient,
        bus: EventBus,
        queue: HandoffQueue,
        *,
        profile: Callable[[], BusinessProfile],
        staff_hours: str = "business",
        assignment: str = "claim",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.assignment = assignment
        self.engine = engine
        self.rasa = rasa
        self.bus = bus
        self.queue = queue
        self.profile = profile
        self.staff_hours = staff_hours
        self.clock = clock

    # -------------------------------------------------------------- publishing

    async def to_customer(self, conversation_id: str, event: dict[str, Any]) -> None:
        await self.bus.publish(conversation_topic(conversation_id), event)

    async def to_staff(self, event: dict[str, Any]) -> None:
        await self.bus.publish(STAFF_TOPIC, event)

    async def _say(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.to_customer(conversation_id, {"type": "message", "message": message})

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
            await self.to_customer(
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

    # -------------------------------------------------------------- availability

    async def availability(self) -> tuple[bool, str]:
        """(True, "") when someone can take a chat now, else (False, why for the customer).

        Only a closed shop quotes when it opens again: while open, "we're back today at
        10 AM" would be wrong (it is past 10), so an empty desk just says nobody is free.
        """
        profile = self.profile()
        now = self.clock()
        if self.staff_hours == "business" and not profile.is_open_at(now):
            return False, profile.say(
                "handoff_offline_after_hours", next_opening=profile.reopening(now)
            )
        if not await self.queue.online_staff():
            return False, profile.say("handoff_offline_no_staff")
        return True, ""

    # -------------------------------------------------------------- shared storage steps

    def _add_message(
        self, conversation_id: str, sender: str, text: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            message, _ = service.add_message(
                session, conversation, sender=sender, text=text, payload=payload
            )
            session.flush()
            return message_view(message)

    def _record_escalation(
        self, session: Session, conversation: Conversation, decision: Decision, actor: str
    ) -> None:
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
                "mood": _mood_brief(conversation.mood),
            },
        )

    def _rebuild_entry(self, conversation_id: str, decision: dict[str, Any]) -> QueueEntry:
        return QueueEntry(
            conversation_id=conversation_id,
            priority=int(decision.get("priority", 0)),
            enqueued_at=time.time(),
            reasons=[r.get("text", "") for r in decision.get("reasons", [])],
        )

    def _mark_claimed(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            # The queue's claim is atomic; this guards the database too, in case the
            # queue and the database ever disagree.
            if conversation.state != State.QUEUED:
                raise DeskError(409, f"Cannot claim: the conversation is {conversation.state}.")
            service.transition(
                session,
                conversation,
                State.WITH_STAFF,
                actor=staff.actor,
                reason=f"claimed by {staff.display_name}",
                data={"staff_name": staff.display_name},
            )
            conversation.assigned_staff_id = staff.id
            data = handoff_data(conversation)
            data["claimed_at"] = time.time()
            conversation.handoff = data
            message, _ = service.add_message(
                session,
                conversation,
                sender="system",
                text=self.profile().say("handoff_staff_joined", staff_name=staff.display_name),
                payload={"kind": "staff_joined", "staff_name": staff.display_name},
            )
            session.flush()
            return message_view(message)


def _mood_brief(mood: dict[str, Any] | None) -> dict[str, Any] | None:
    return Mood.from_dict(mood).brief() if mood else None


def _last_decision(session: Session, conversation_id: str) -> dict[str, Any]:
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
