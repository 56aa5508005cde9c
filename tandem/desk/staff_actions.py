"""Staff actions on a conversation: claim, reply, note, transfer, return to the bot, close."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from handoff.queue import QueueEntry
from tandem.conversations import service, transitions
from tandem.conversations.effects import Effects
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.desk.core import CoreDesk, last_decision
from tandem.desk.errors import Conflict, InvalidRequest
from tandem.desk.views import staff_message_view
from tandem.staff.actor import StaffRef
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
            raise Conflict(f"Cannot claim: {result.reason}.")

        def store() -> Effects:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                return transitions.claim(session, conversation, staff, self.profile())

        try:
            effects = await run_in_threadpool(store)
        except Conflict:
            await self.queue.release(conversation_id, staff.queue_id)
            raise
        await self.publisher.publish(effects)
        await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.WITH_STAFF.value}

    def _queued_entry(self, conversation_id: str) -> QueueEntry | None:
        """The queue entry of a conversation the database says is queued, rebuilt."""
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            if conversation.state != State.QUEUED:
                return None
            decision = last_decision(session, conversation_id)
        return self.rebuild_entry(conversation_id, decision)

    async def reply(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        def store() -> Effects:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                transitions.check_holder(conversation, staff)
                message, _ = service.add_message(
                    session,
                    conversation,
                    sender="staff",
                    text=text,
                    payload={"staff_id": staff.id, "staff_name": staff.display_name},
                )
                session.flush()
                effects = Effects(conversation_id)
                view = effects.say(message)
                effects.tell_staff(
                    {"type": "staff_message", "assigned_staff_id": staff.id, "message": view}
                )
                return effects

        effects = await run_in_threadpool(store)
        await self.publisher.publish(effects)
        return effects.said[0]

    async def note(self, conversation_id: str, staff: StaffRef, text: str) -> dict[str, Any]:
        """An internal note: stored, shown to staff, never sent to the customer."""

        def store() -> tuple[Effects, dict[str, Any]]:
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
                note = staff_message_view(message)
                effects = Effects(conversation_id)
                effects.tell_staff(
                    {
                        "type": "note",
                        "assigned_staff_id": conversation.assigned_staff_id,
                        "message": note,
                    }
                )
                return effects, note

        effects, note = await run_in_threadpool(store)
        await self.publisher.publish(effects)
        return note

    async def transfer(
        self, conversation_id: str, staff: StaffRef, to_staff_id: int
    ) -> dict[str, Any]:
        def target() -> StaffRef:
            with session_scope(self.engine) as session:
                user = session.get(StaffUser, to_staff_id)
                if user is None or not user.active:
                    raise InvalidRequest(f"No active staff member with id {to_staff_id}.")
                conversation = service.get_conversation(session, conversation_id)
                transitions.check_holder(conversation, staff)
                return StaffRef(user.id, user.display_name, user.role, user.capacity)

        to = await run_in_threadpool(target)
        holder = await self.queue.assigned_to(conversation_id) or staff.queue_id
        result = await self.queue.transfer(conversation_id, holder, to.queue_id)
        if not result.ok:
            raise Conflict(f"Cannot transfer: {result.reason}.")

        def store() -> Effects:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                return transitions.transfer(session, conversation, staff, to, self.profile())

        await self.publisher.publish(await run_in_threadpool(store))
        return {"conversation_id": conversation_id, "assigned_staff_id": to.id}

    async def return_to_bot(self, conversation_id: str, staff: StaffRef) -> dict[str, Any]:
        def store() -> tuple[Effects, float | None]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                return transitions.return_to_bot(session, conversation, staff, self.profile())

        effects, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        # Rasa resumes with a clean dialogue state (forms the chat left open are dropped).
        await self.assistant.resume(conversation_id)
        await self.publisher.publish(effects)
        return {"conversation_id": conversation_id, "state": State.BOT.value}

    async def close(self, conversation_id: str, staff: StaffRef, resolution: str) -> dict[str, Any]:
        def store() -> tuple[Effects, float | None]:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                return transitions.close(session, conversation, staff, resolution, self.profile())

        effects, handled = await run_in_threadpool(store)
        await self.queue.release(conversation_id)
        removed = await self.queue.remove(conversation_id)
        if handled is not None:
            await self.queue.record_handle_time(handled)
        await self.publisher.publish(effects)
        if removed:
            await self.push_positions()
        return {"conversation_id": conversation_id, "state": State.CLOSED.value}
