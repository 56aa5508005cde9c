"""Staff actions on a conversation: claim, reply, note, transfer, return to the bot, close."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.desk.core import CoreDesk, DeskError, StaffRef, _last_decision
from bot.desk.views import staff_message_view
from bot.serializers import message_view
from handoff.queue import QueueEntry
from sentiment.mood import Mood
from tandem.conversations import service
from tandem.conversations.models import Conversation
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.staff.models import StaffUser


class StaffActionsMixin(CoreDesk):
    """What staff do with a conversation (called by the staff API)."""

    async def ensure_online(self, staff: StaffRef) -> None:
        """Claiming means working: an offline (or expired) member comes online to claim."""
        presence = await self.queue.presence(staff.queue_id)
        if presence.state == "offline":
            await self.queue.set_presence(staff.queue_id, "online", staff.capacity)

    async def claim(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        await self.ensure_online(staff)
        result = await self.queue.claim(conversation_id, staff.queue_id)
        if not result.ok and result.code == "not_queued":
            # The queue may have lost it (an in-process queue after a restart): the
            # database is the truth, so put it back and try once more.
            entry = await run_in_threadpool(self._queued_entry, conversation_id)
            if entry is not None and await self.queue.assigned_to(conversation_id) is None:
                await self.queue.enqueue(entry)
                result = await self.queue.claim(conversation_id, staff.queue_id)
        if not result.ok:
            raise DeskError(409, f"Cannot claim: {result.reason}.")
        try:
            said = await run_in_threadpool(self._mark_claimed, conversation_id, staff)
        except DeskError:
            await self.queue.release(conversation_id, staff.queue_id)
            raise
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "claimed",
                "conversation_id": conversation_id,
                "staff_id": staff.id,
            }
        )
        await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.WITH_STAFF.value}

    def _queued_entry(self, conversation_id: str) -> QueueEntry | None:
        """The queue entry of a conversation the database says is queued, rebuilt."""
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            if conversation.state != State.QUEUED:
                return None
            decision = _last_decision(session, conversation_id)
        return self._rebuild_entry(conversation_id, decision)

    def _assigned(
        self, session: Session, conversation_id: str, staff: StaffRef, *, owner_ok: bool = True
    ) -> Conversation:
        conversation = service.get_conversation(session, conversation_id, lock=True)
        if conversation.state != State.WITH_STAFF:
            raise DeskError(409, f"The conversation is {conversation.state}, not with staff.")
        if conversation.assigned_staff_id != staff.id and not (owner_ok and staff.is_owner):
            raise DeskError(403, "This conversation is assigned to someone else.")
        return conversation

    async def reply(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = self._assigned(session, conversation_id, staff)
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="staff",
                    text=text,
                    payload={"staff_id": staff.id, "staff_name": staff.display_name},
                )
                session.flush()
                return message_view(message)

        message = await run_in_threadpool(store)
        await self._say(conversation_id, [message])
        await self.to_staff(
            {
                "type": "staff_message",
                "conversation_id": conversation_id,
                "assigned_staff_id": staff.id,
                "message": message,
            }
        )
        return message

    async def note(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        """An internal note: stored, shown to staff, never sent to the customer."""

        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="staff",
                    text=text,
                    payload={
                        "internal": True,
                        "staff_id": staff.id,
                        "staff_name": staff.display_name,
                    },
                    status="internal",
                )
                session.flush()
                return staff_message_view(message) | {
                    "assigned_staff_id": conversation.assigned_staff_id
                }

        note = await run_in_threadpool(store)
        await self.to_staff(
            {
                "type": "note",
                "conversation_id": conversation_id,
                "assigned_staff_id": note.pop("assigned_staff_id"),
                "message": note,
            }
        )
        return note

    async def transfer(
        self, conversation_id: str, staff: StaffRef, to_staff_id: int
    ) -> dict[str, Any]:
        def target() -> StaffRef:
            with session_scope(self.engine) as session:
                user = session.get(StaffUser, to_staff_id)
                if user is None or not user.active:
                    raise DeskError(422, f"No active staff member with id {to_staff_id}.")
                conversation = self._assigned(session, conversation_id, staff)
                del conversation
                return StaffRef(user.id, user.display_name, user.role, user.capacity)

        to = await run_in_threadpool(target)
        holder = await self.queue.assigned_to(conversation_id) or staff.queue_id
        result = await self.queue.transfer(conversation_id, holder, to.queue_id)
        if not result.ok:
            raise DeskError(409, f"Cannot transfer: {result.reason}.")

        def store() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                conversation.assigned_staff_id = to.id
                service.record_event(
                    session,
                    conversation,
                    kind="transferred",
                    actor=staff.actor,
                    reason=f"transferred to {to.display_name}",
                    data={"from_staff_id": staff.id, "to_staff_id": to.id},
                )
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="system",
                    text=self.profile().say("handoff_transferred", staff_name=to.display_name),
                    payload={"kind": "transferred", "staff_name": to.display_name},
                )
                session.flush()
                return message_view(message)

        said = await run_in_threadpool(store)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "transferred",
                "conversation_id": conversation_id,
                "staff_id": to.id,
                "assigned_staff_id": to.id,
            }
        )
        return {"conversation_id": conversation_id, "assigned_staff_id": to.id}

    async def return_to_bot(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        def store() -> tuple[dict[str, Any], float | None]:
            with session_scope(self.engine) as session:
                conversation = self._assigned(session, conversation_id, staff)
                handled = _handle_seconds(conversation)
                previous_mood = Mood.from_dict(conversation.mood or {}).snapshot()
                service.transition(
                    session,
                    conversation,
                    State.BOT,
                    actor=staff.actor,
                    reason=f"returned to the bot by {staff.display_name}",
                    data={"handle_seconds": handled, "mood_before": previous_mood},
                )
                conversation.assigned_staff_id = None
                # A fresh start: the frustration that caused the handoff was dealt with by a
                # person, and must not send the next routine question straight back.
                conversation.mood = None
                # Remembered so that this person may still wrap the chat up (close + CSAT).
                conversation.handoff = {"returned_by": staff.id}
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="bot",
                    text=self.profile().say("handoff_returned"),
                    payload={"kind": "returned_to_bot"},
                )
                session.flush()
                return message_view(message), handled

        said, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        # Rasa resumes with a clean dialogue state (forms the chat left open are dropped).
        await self.rasa.resume(conversation_id)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {
                "type": "queue_changed",
                "change": "returned_to_bot",
                "conversation_id": conversation_id,
            }
        )
        return {"conversation_id": conversation_id, "state": State.BOT.value}

    async def close(self, conversation_id: str, staff: StaffRef, resolution: str) -> dict[str, Any]:
        def store() -> tuple[dict[str, Any], float | None]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                if conversation.state == State.WITH_STAFF:
                    conversation = self._assigned(session, conversation_id, staff)
                elif conversation.state == State.BOT:
                    # Wrap-up after a return to the bot: whoever returned it, or the owner.
                    returned_by = (conversation.handoff or {}).get("returned_by")
                    if returned_by is None or (returned_by != staff.id and not staff.is_owner):
                        raise DeskError(
                            409, "The bot has this conversation; only staff who handled it "
                            "can close it."
                        )
                elif conversation.state not in (State.QUEUED, State.OFFLINE_TICKET):
                    raise DeskError(
                        409, f"The conversation is {conversation.state}; nothing to close."
                    )
                handled = _handle_seconds(conversation)
                service.transition(
                    session,
                    conversation,
                    State.CLOSED,
                    actor=staff.actor,
                    reason=resolution,
                    data={"resolution": resolution, "handle_seconds": handled},
                )
                conversation.resolution = resolution
                for ticket in conversation.tickets:
                    if ticket.status != "resolved":
                        ticket.status = "resolved"
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="system",
                    text=self.profile().say("handoff_csat"),
                    payload={"kind": "csat_request"},
                )
                session.flush()
                return message_view(message), handled

        said, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        removed = await self.queue.remove(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        await self._say(conversation_id, [said])
        await self.to_staff(
            {"type": "queue_changed", "change": "closed", "conversation_id": conversation_id}
        )
        if removed:
            await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.CLOSED.value}


def _handle_seconds(conversation: Conversation) -> float | None:
    claimed = (conversation.handoff or {}).get("claimed_at")
    return round(max(0.0, time.time() - float(claimed)), 3) if claimed is not None else None
