"""Escalation: queue a conversation for staff (or take the offline path) and auto-assign."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from handoff.policy import Decision
from handoff.queue import QueueEntry
from tandem.business.models import Customer
from tandem.conversations import service, transitions
from tandem.conversations.effects import Effects
from tandem.conversations.models import Conversation
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.desk.errors import Conflict
from tandem.desk.offline import OfflineMixin


class EscalationMixin(OfflineMixin):
    """Escalate to the queue (or fall back to the offline ticket) and auto-assign."""

    async def escalate(
        self, conversation_id: str, decision: Decision, *, actor: str = "policy"
    ) -> list[dict[str, Any]]:
        """Queue the conversation for staff, or take the offline path; returns what was said."""
        availability = await self.availability.now()
        if not availability.available:
            return await self.go_offline(conversation_id, decision, availability, actor)
        entry = await run_in_threadpool(self._mark_queued, conversation_id, decision, actor)
        if entry is None:
            return []
        position = await self.queue.enqueue(entry)
        wait = await self.queue.estimated_wait_seconds(position)
        effects = await run_in_threadpool(self._say_position, conversation_id, position, wait)
        effects.tell_staff(
            {
                "type": "escalation",
                "priority": entry.priority,
                "reasons": entry.reasons,
                "customer_value": entry.customer_value,
                "customer_label": entry.customer_label,
                "position": position,
                "at": time.time(),
            }
        )
        await self.publisher.publish(effects)
        said = effects.said
        if self.assignment == "auto":
            joined = await self.auto_assign(conversation_id)
            if joined is not None:
                return [*said, *joined]
        await self.push_positions()
        return said

    async def auto_assign(self, conversation_id: str) -> list[dict[str, Any]] | None:
        """Give the conversation to the least-loaded online staff member, if any has room."""
        staff_id = await self.queue.auto_assign(conversation_id)
        if staff_id is None:
            return None  # everyone is full: it waits in the queue for a claim
        staff = await run_in_threadpool(self.staff_ref, int(staff_id))

        def store() -> Effects:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                return transitions.claim(
                    session, conversation, staff, self.profile(), change="assigned"
                )

        try:
            effects = await run_in_threadpool(store)
        except Conflict:
            await self.queue.release(conversation_id, staff.queue_id)
            return None
        await self.publisher.publish(effects)
        await self.push_positions()
        return effects.said

    def _say_position(self, conversation_id: str, position: int, wait: float) -> Effects:
        effects = Effects(conversation_id)
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            text = self.profile().say(
                "handoff_queued", position=position, wait=self.wait_text(wait)
            )
            message, _ = service.add_message(
                session,
                conversation,
                sender="system",
                text=text,
                payload={
                    "kind": "queue_position",
                    "position": position,
                    "wait_seconds": round(wait),
                },
            )
            session.flush()
            effects.say(message)
        return effects

    def _mark_queued(
        self, conversation_id: str, decision: Decision, actor: str
    ) -> QueueEntry | None:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            if conversation.state != State.BOT:
                return None  # already with staff or queued: nothing new to do
            transitions.escalate(session, conversation, decision, actor=actor)
            return self._entry_for(session, conversation, decision)

    def _entry_for(
        self, session: Session, conversation: Conversation, decision: Decision
    ) -> QueueEntry:
        value, label = 0.0, ""
        if conversation.customer_id is not None and conversation.customer_verified:
            customer = session.get(Customer, conversation.customer_id)
            if customer is not None:
                value = float(customer.lifetime_value)
                label = f"{customer.name} ({customer.tier})"
        return QueueEntry(
            conversation_id=conversation.id,
            priority=decision.priority,
            enqueued_at=time.time(),
            reasons=[r.text for r in decision.reasons],
            customer_value=value,
            customer_label=label,
        )
