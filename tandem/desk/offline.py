"""The offline fallback: the ticket opened when nobody can take the chat, and the
contact form (name, then e-mail or phone) the gateway runs for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from handoff.policy import Decision
from handoff.state import HandoffState
from tandem.business.contact import find_email, is_opt_out, looks_like_question, parse_name
from tandem.business.service import normalise_phone
from tandem.conversations import service, transitions
from tandem.conversations.effects import Effects
from tandem.conversations.models import Conversation, Message, Ticket
from tandem.conversations.states import State
from tandem.db import session_scope
from tandem.desk.availability import Availability
from tandem.desk.core import CoreDesk


@dataclass(frozen=True)
class OfflineStep:
    """What the offline contact flow did with a customer message (see offline_step)."""

    effects: Effects | None = None  # what the form said (published by the flow)
    forward: bool = False  # the ticket is complete: the bot has the conversation again
    answer_first: bool = False  # not an answer to the form: the bot answers it first


class OfflineMixin(CoreDesk):
    """Open the offline ticket and run its contact form."""

    async def go_offline(
        self, conversation_id: str, decision: Decision, availability: Availability, actor: str
    ) -> list[dict[str, Any]]:
        effects = await run_in_threadpool(
            self._file_ticket, conversation_id, decision, availability, actor
        )
        if effects is None:
            return []
        await self.publisher.publish(effects)
        return effects.said

    def _file_ticket(
        self, conversation_id: str, decision: Decision, availability: Availability, actor: str
    ) -> Effects | None:
        profile = self.profile()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            if conversation.state not in (State.BOT, State.QUEUED):
                return None
            effects, _ = transitions.file_ticket(
                session,
                conversation,
                decision,
                profile,
                why=availability.why,
                reply_by=profile.next_opening(self.clock()) if availability.after_hours else None,
                actor=actor,
            )
            return effects

    def offline_step(self, conversation_id: str, message_id: int) -> OfflineStep:
        """The gateway-side contact flow for an offline ticket (storage thread).

        The customer's message is the answer to "What's your name?" (then "e-mail or
        phone?"), unless it is not one: a question or a request goes to the bot like any
        other message (`answer_first`), and the form asks again afterwards
        (`offline_reask`). "no thanks" or "cancel" leaves the form; the ticket keeps the
        question. When the ticket is complete, `forward` sends the message to the bot.
        """
        profile = self.profile()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            message = session.get_one(Message, message_id)
            state = service.load_handoff(conversation)
            ticket = session.get(Ticket, state.ticket_id) if state.ticket_id else None
            step = state.offline_step
            if ticket is None or step not in ("name", "contact"):
                transitions.leave_ticket(
                    session,
                    conversation,
                    reason="the customer wrote again after leaving a ticket",
                )
                return OfflineStep(forward=True)
            ticket.message_ids = [*ticket.message_ids, message.id]
            text = message.text.strip()
            if is_opt_out(text):
                return OfflineStep(self._leave_form(session, conversation, ticket, message))
            reply: str | None = None
            if step == "name":
                name = parse_name(text)
                if name is None:
                    return OfflineStep(answer_first=True)  # a question, not a name
                ticket.name = name
                state.offline_step, state.offline_reasked = "contact", None
                reply = profile.say("handoff_offline_ask_contact", name=name)
            else:
                email, bad_email = find_email(text)
                phone = None if email or bad_email else normalise_phone(text)
                if bad_email:
                    reply = profile.say("handoff_offline_email_invalid", email=bad_email)
                elif not email and not phone:
                    if looks_like_question(text):
                        return OfflineStep(answer_first=True)
                    reply = profile.say("handoff_offline_contact_invalid")
                else:
                    ticket.email, ticket.phone, ticket.status = email, phone, "open"
                    state.offline_step = "done"
                    when = (
                        profile.say(
                            "handoff_reply_by_opening",
                            next_opening=profile.reopening(self.clock()),
                        )
                        if ticket.reply_by is not None
                        else profile.say("handoff_reply_soon")
                    )
                    reply = profile.say(
                        "handoff_offline_ticket",
                        name=ticket.name or "",
                        ticket=ticket.id,
                        contact=email or phone,
                        when=when,
                    )
                    service.record_event(
                        session,
                        conversation,
                        kind="ticket_opened",
                        actor="customer",
                        reason=f"ticket #{ticket.id}",
                        data={"ticket_id": ticket.id, "message_ids": ticket.message_ids},
                    )
            message.status = "held"
            service.save_handoff(conversation, state)
            return OfflineStep(self._form_says(session, conversation, reply, ticket.id))

    @staticmethod
    def _form_says(
        session: Session, conversation: Conversation, text: str, ticket_id: int | None
    ) -> Effects:
        effects = Effects(conversation.id)
        said, _ = service.add_message(
            session,
            conversation,
            sender="bot",
            text=text,
            payload={"kind": "offline_contact", "ticket_id": ticket_id},
        )
        session.flush()
        effects.say(said)
        return effects

    def _leave_form(
        self, session: Session, conversation: Conversation, ticket: Ticket, message: Message
    ) -> Effects:
        """The customer does not want to leave details: back to the bot, the ticket stays."""
        message.status = "held"
        ticket.status = "open"
        effects = transitions.leave_ticket(
            session,
            conversation,
            reason="the customer declined to leave contact details",
            data={"ticket_id": ticket.id},
        )
        profile = self.profile()
        text = profile.say(
            "handoff_offline_left_form",
            ticket_note=profile.say("handoff_offline_left_form_ticket", ticket=ticket.id),
        )
        return effects.extend(self._form_says(session, conversation, text, ticket.id))

    def offline_reask(self, conversation_id: str) -> Effects | None:
        """After the bot answered a question mid-form: ask for the detail again, once."""
        profile = self.profile()
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            state: HandoffState = service.load_handoff(conversation)
            step = state.offline_step
            if conversation.state != State.OFFLINE_TICKET or step not in ("name", "contact"):
                return None
            if state.offline_reasked == step:
                return None  # asked again already: the form stays open, without nagging
            state.offline_reasked = step
            service.save_handoff(conversation, state)
            text = profile.say(f"handoff_offline_ask_{step}_again")
            return self._form_says(session, conversation, text, state.ticket_id)
