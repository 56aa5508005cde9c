"""The offline fallback: the ticket opened when nobody can take the chat, and the
contact form (name, then e-mail or phone) the gateway runs for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from handoff.policy import Decision
from handoff.state import HandoffState
from tandem.business.service import normalise_email, normalise_phone
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


# ------------------------------------------------------------------ the contact form's answers

_NAME_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|sure|ok|okay|yes)\b[\s,!.]*)?"
    r"(?:it'?s|it is|i'?m|i am|this is|my name is|my name'?s|name'?s|name is|call me)\s+",
    re.IGNORECASE,
)
# Letters (any script), then letters, spaces, hyphens and apostrophes.
_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '’-])*")
_NAME_MAX_CHARS = 80
_NAME_MAX_WORDS = 5
# A message starting with one of these is a question or a request, not a name.
_NOT_NAME_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who whom whose which can could do does did is are was were
    will would should shall may might have has had i we you my our your the a an this that
    there please tell show give send need want help track cancel return change book find
    check where's what's how's when's who's don't dont not no yes ok okay hi hello hey
    thanks thank sure yeah yep nope any anything something""",
    )
)
# Words that are never part of a name: things a shop is asked about, days and times
# (an answer to the bot's other questions), farewells, and the function words of a
# sentence ("So Is My Appointment Booked").
_NOT_NAME_WORDS = frozenset(
    re.findall(
        r"\S+",
        """order orders refund refunds return returns price prices cost costs much many hours
    open opening closed delivery shipping size sizes stock appointment booking booked blazer
    dress shirt jacket coat shoes item items help question person human agent staff manager
    monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight morning
    afternoon evening night noon weekend week am pm bye goodbye thx thanks thank ty cheers
    lol ok okay is are was were am my your our their the a an this that it its so and or
    but not what when where how why booked confirmed please sorry""",
    )
)
_OPT_OUT = re.compile(
    r"^(?:(?:ok(?:ay)?|no|nope)?[\s,]*(?:thanks?|thx|ty|thank you|cheers)?[\s,!.]*"
    r"(?:bye|goodbye|bye bye|see ya|cya)|no,?\s*thanks?|no thank you|nope|no|cancel|stop|"
    r"skip|never ?mind|forget it|i'?d rather not|rather not|not now|leave it|"
    r"(?:ok(?:ay)?\s*)?(?:thanks?|thx|ty|thank you)(?: anyway)?)[\s.!]*$",
    re.IGNORECASE,
)
_EMAIL_TOKEN = re.compile(r"\S*@\S*")
_EMAIL_VALID = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# Where an address is expected, only a clear question or request goes to the bot.
_QUESTION_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who which can could do does did is are will would should
        may please tell show give send track cancel return change book find check where's
        what's how's when's who's""",
    )
)


def is_opt_out(text: str) -> bool:
    """The customer leaves the contact form: "no thanks", "cancel", "never mind"."""
    return bool(_OPT_OUT.match(text.strip().replace("’", "'")))


def looks_like_question(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower().replace("’", "'"))
    return "?" in text or (bool(words) and words[0] in _QUESTION_START)


def parse_name(text: str) -> str | None:
    """The customer's name from "Marcus Reed" or "it's Ana"; None for anything else.

    A name is letters, spaces, hyphens and apostrophes, at most 80 characters and five
    words; a question ("how much is the blazer"), a request or small talk is not one.
    """
    cleaned = text.strip().replace("’", "'").rstrip(".!")
    if "?" in cleaned:
        return None
    cleaned = _NAME_LEAD_IN.sub("", cleaned, count=1).strip()
    cleaned = re.sub(r"\s+", " ", cleaned)
    if not cleaned or len(cleaned) > _NAME_MAX_CHARS or not _NAME.fullmatch(cleaned):
        return None
    words = cleaned.lower().split()
    if len(words) > _NAME_MAX_WORDS or sum(c.isalpha() for c in cleaned) < 2:
        return None
    if words[0] in _NOT_NAME_START or any(w.strip("'-") in _NOT_NAME_WORDS for w in words):
        return None
    return cleaned


def find_email(text: str) -> tuple[str | None, str | None]:
    """(a valid e-mail address, None), (None, what was typed as a broken one) or (None, None)."""
    token = _EMAIL_TOKEN.search(text)
    if token is None:
        return None, None
    candidate = token.group(0).strip("<>()[]\"',;:.!?")
    if _EMAIL_VALID.match(candidate):
        return normalise_email(candidate), None
    return None, candidate[:80]


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
