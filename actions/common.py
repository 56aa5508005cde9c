"""Shared plumbing for the actions: profile, database, clock, payloads and retries."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT, FormValidationAction
from rasa_sdk.types import DomainDict

from handoff.identity import (
    IDENTITY_SIGNATURE_KEY,
    sign_conversation_identity,
    verify_conversation_identity,
)
from handoff.signals import (
    PERSON_PAYLOAD,
    HandoffSignal,
    IdentifiedSignal,
    RefusedSignal,
    RetrySignal,
    UnderstoodSignal,
    to_custom,
)
from tandem.business.profile import DEFAULT_MESSAGES, BusinessProfile, get_profile
from tandem.business.service import BusinessService
from tandem.config import get_settings
from tandem.db import get_engine, session_scope, utcnow

# Tests replace the clock to run on a fixed date.
clock: Callable[[], datetime] = utcnow

# failed tries at one question before the bot offers another way instead of asking again
MAX_TRIES = 2
RETRY_TAG = "tandem_retry"  # marks a retry message (BotUttered metadata): "<form>:<slot>"
IDENTITY_TAG = "tandem_identity"  # a signed customer id on our own message (BotUttered)
_STOP_FORM = "__tandem_stop_form"  # private marker in tracker.slots for this request only


def profile() -> BusinessProfile:
    return get_profile()


@contextmanager
def business_service() -> Iterator[BusinessService]:
    """A unit of work against DATABASE_URL; commits when the block succeeds."""
    with session_scope(get_engine()) as session:
        yield BusinessService(session, profile(), clock=lambda: clock())


def text_of(value: Any) -> str:
    """Slot values arrive as text, numbers or (several entities) lists."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [
        str(e.get("value"))
        for e in tracker.latest_message.get("entities", []) or []
        if e.get("entity") == entity and e.get("value")
    ]


def verified_customer_id(tracker: Tracker) -> int | None:
    """The customer this conversation is verified as, if any.

    Only values signed with IDENTITY_SECRET for this very conversation (the tracker's
    sender id) count, never a plain `verified: true` or a bare slot:
    - the gateway's metadata on the latest message (handoff.identity.rasa_identity_metadata),
      for a conversation verified by the widget or by an earlier order look-up;
    - within the turn of an order look-up with a matching e-mail, the `verified_customer_id`
      slot together with the signed note `identify` left on its own bot message.
    Rasa's HTTP API and the action server both require tokens now, but a slot or tracker
    made up by anyone who gets past them still names no customer without the secret.
    """
    secret = get_settings().identity_secret
    conversation = tracker.sender_id
    metadata = tracker.latest_message.get("metadata") or {}
    customer = verify_conversation_identity(
        secret, conversation, metadata.get("customer_id"), metadata.get(IDENTITY_SIGNATURE_KEY)
    )
    if customer is not None:
        return customer
    slot = tracker.get_slot("verified_customer_id")
    if slot is None:
        return None
    for event in reversed(tracker.events):
        if event.get("event") != "bot":
            continue
        note = (event.get("metadata") or {}).get(IDENTITY_TAG)
        if isinstance(note, dict):
            customer = verify_conversation_identity(
                secret, conversation, note.get("customer_id"), note.get("signature")
            )
            if customer is not None and float(customer) == _number(slot):
                return customer
    return None


def _number(value: Any) -> float | None:
    try:
        return float(text_of(value))
    except ValueError:
        return None


def identity_note(tracker: Tracker, customer_id: int) -> dict[str, Any]:
    """Extra keys for the bot message that sets `verified_customer_id` (see above)."""
    signature = sign_conversation_identity(
        get_settings().identity_secret, tracker.sender_id, customer_id
    )
    return {IDENTITY_TAG: {"customer_id": customer_id, "signature": signature}}


def person_buttons() -> list[dict[str, str]]:
    return [{"title": profile().say("talk_to_person_button"), "payload": PERSON_PAYLOAD}]


# "I don't have it", "lost the e-mail", "never got a reference": an answer saying the
# customer cannot give what the form asks for (only read when the answer was not valid).
_CANNOT_GIVE = re.compile(
    r"\b(?:dont|do not|didnt|did not|never|cant|cannot|can not|couldnt|could not|no longer)"
    r"\s+(?:\w+\s+){0,2}?(?:have|has|had|got|get|received|find|remember|recall|know|keep|kept)\b"
    r"|\b(?:lost|deleted|threw away|thrown away|no idea)\b"
    r"|\blook (?:it |me |them )?up (?:by|with|using|from)\b"
    r"|\b(?:no|without an?|without the|without any)\s+(?:\w+\s+)?"
    r"(?:reference|ref|order number|number|confirmation|receipt|email|e-mail)\b",
    re.IGNORECASE,
)


def says_cannot_give(text: str) -> bool:
    """The customer says they do not have (or cannot find) what they were asked for."""
    return bool(_CANNOT_GIVE.search(re.sub(r"['\u2019`]", "", text)))


def handoff_payload(reason: str, text: str) -> dict[str, Any]:
    """Ask the gateway for a person (handoff.signals is the contract both sides share)."""
    return to_custom(HandoffSignal(reason=reason, text=text))


def identified_payload(customer_id: int, via: str) -> dict[str, Any]:
    return to_custom(IdentifiedSignal(customer_id=customer_id, via=via))


def reset_slots(*names: str) -> list[EventType]:
    return [SlotSet(name, None) for name in names]


def retry_tag(form: str, question: str) -> str:
    return f"{form}:{question}"


def failures_in_form(tracker: Tracker, tag: str) -> int:
    """Retries already sent for one question (`retry_tag`) in the current run of its form.

    Counted from the events since the latest loop change: retry messages carry
    `tandem_retry` in their metadata, which Rasa keeps on the BotUttered event.
    """
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop":
            break
        if event.get("event") == "bot" and (event.get("metadata") or {}).get(RETRY_TAG) == tag:
            count += 1
    return count


def slot_before_this_message(tracker: Tracker, slot: str) -> Any:
    """A slot's value before the latest customer message filled it again (the tracker a
    validation sees already holds the new candidate)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


# Intents the NLU gives a message it could not place: mid-form, maybe the answer anyway.
MISREAD_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})


class TandemFormValidation(FormValidationAction):
    """Form validation with ordered slots, counted retries and early stops."""

    form_slots: ClassVar[tuple[str, ...]] = ()
    start_intent: ClassVar[str] = ""  # the request that starts the form ("Start again")

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        intent = latest_intent(tracker)
        requested = tracker.get_slot(REQUESTED_SLOT)
        taken = any(
            e.get("event") == "slot" and e.get("name") == requested and e.get("value") is not None
            for e in events
        )
        if intent in MISREAD_INTENTS and requested and taken:
            # The NLU could not place the message, yet it answered the question: the gateway
            # must not count a misunderstanding (handoff.signals.UnderstoodSignal).
            understood = UnderstoodSignal(question=retry_tag(self.form_name(), requested))
            dispatcher.utter_message(json_message=to_custom(understood))
        return events

    def reads_answer(self, slot: str, text: str) -> bool:
        """Whether `text` answers the question for `slot` ("at 3 in afternoon is possible?"
        gives a time); a form that can tell says so, for answers the NLU misreads."""
        return False

    def take_misread_answer(self, tracker: Tracker, slot: str) -> dict[str, Any]:
        """The answer to the question being asked when the NLU misread it as something it
        could not place, or as the form's own request said again: `{slot: text}` when the
        form can read it (then validated like any answer), else nothing."""
        intent = latest_intent(tracker)
        if tracker.get_slot(REQUESTED_SLOT) != slot:
            return {}
        if intent not in MISREAD_INTENTS and intent != self.start_intent:
            return {}
        text = latest_text(tracker)
        return {slot: text} if self.reads_answer(slot, text) else {}

    @abstractmethod
    def name(self) -> str:
        """validate_<form>; abstract so the action server skips the shared bases."""

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        return list(self.form_slots or domain_slots)

    async def next_requested_slot(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventType | None:
        if tracker.slots.get(_STOP_FORM):
            return SlotSet(REQUESTED_SLOT, None)
        return await super().next_requested_slot(dispatcher, tracker, domain)

    @staticmethod
    def stop_form(tracker: Tracker) -> dict[str, Any]:
        """Ends the form after this validation; Rasa then runs the form's final action."""
        tracker.slots[_STOP_FORM] = True
        return {REQUESTED_SLOT: None}

    @staticmethod
    def is_requested(tracker: Tracker, slot: str) -> bool:
        return tracker.get_slot(REQUESTED_SLOT) == slot

    @classmethod
    def asked_another(cls, tracker: Tracker, slot: str) -> bool:
        """The form asks for another slot: a value for `slot` picked up in passing is
        dropped quietly, so the customer only hears about what they were asked."""
        return not cls.is_requested(tracker, slot) and bool(tracker.get_slot(REQUESTED_SLOT))

    def retry(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str, slot: str
    ) -> dict[str, Any]:
        """Reject a value with an explanation; at the second failure offer another way.

        A value that was not asked for (an entity picked up in passing) is dropped
        quietly, so the customer only hears about what they were asked. A customer who
        says they do not have it ("I deleted the e-mail") goes to a person at once.
        """
        if self.asked_another(tracker, slot):
            return {slot: None}
        if f"cannot_give_{slot}" in DEFAULT_MESSAGES and says_cannot_give(latest_text(tracker)):
            text = profile().say(f"cannot_give_{slot}")
            dispatcher.utter_message(json_message=handoff_payload(f"no_{slot}", text))
            return {slot: None, **self.stop_form(tracker)}
        if self.failed_twice(dispatcher, tracker, text, slot):
            return {slot: None, **self.stop_form(tracker)}
        return {slot: None}

    def refuse(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str, slot: str
    ) -> dict[str, Any]:
        """A value understood but not possible (a closed day, a time already taken): say
        why, with the alternatives, and ask again. The customer is choosing, not failing:
        it is never counted as a failed try, so the form never gives up over it."""
        if self.asked_another(tracker, slot):
            return {slot: None}
        refused = RefusedSignal(question=retry_tag(self.form_name(), slot))
        dispatcher.utter_message(text=text, json_message=to_custom(refused))
        return {slot: None}

    def failed_twice(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        text: str,
        question: str,
        last_text: str | None = None,
    ) -> bool:
        """Say `text`; at the second failure say `last_text` (or `text`) with the other
        ways (a person, start again) instead of letting the form ask a third time.
        True when the form should stop."""
        tag = retry_tag(self.form_name(), question)
        attempt = failures_in_form(tracker, tag) + 1
        # The gateway reads the rejection itself (typed), not the words or the buttons.
        signal = to_custom(RetrySignal(question=tag, attempt=attempt))
        if attempt < MAX_TRIES:
            dispatcher.utter_message(text=text, json_message=signal, **{RETRY_TAG: tag})
            return False
        p = profile()
        hint_key = f"retry_hint_{question}"
        hint = p.say(hint_key) if hint_key in DEFAULT_MESSAGES else ""
        buttons = person_buttons()
        if self.start_intent:
            again = p.say("start_again_button")
            buttons.append({"title": again, "payload": f"/{self.start_intent}"})
        dispatcher.utter_message(
            text=" ".join(
                part for part in (last_text or text, hint, p.say("retry_alternatives")) if part
            ),
            buttons=buttons,
            json_message=signal,
            **{RETRY_TAG: tag},
        )
        return True
