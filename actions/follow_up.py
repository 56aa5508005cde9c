"""A short follow-up the NLU could not place ("and tomorrow?", "and express?", "do they
expire"), or read as a bare detail (`inform` outside a form), is about the answer just
given: that answer runs again on the new words, instead of "Sorry, I didn't understand".

Only outside a form, and only after an answer that reads the customer's words (a day, a
size, a country) or is a whole topic (gift cards, payment): the follow-up gets the same
kind of answer for what it asks now.
"""

from __future__ import annotations

import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import latest_text
from actions.help import ActionGiftCards, ActionPromotions, ActionRestock, ActionSizeGuide
from actions.info import (
    ActionLocation,
    ActionOpeningHours,
    ActionPaymentMethods,
    ActionReturnsPolicy,
    ActionShippingInfo,
)
from actions.products import ActionProductInfo
from handoff.signals import UnderstoodSignal, to_custom

# Answers a follow-up can ask again: each reads the latest words or answers a whole topic.
FOLLOW_UP_ANSWERS: dict[str, type[Action]] = {
    action().name(): action
    for action in (
        ActionOpeningHours,
        ActionShippingInfo,
        ActionProductInfo,
        ActionPaymentMethods,
        ActionReturnsPolicy,
        ActionGiftCards,
        ActionPromotions,
        ActionSizeGuide,
        ActionRestock,
        ActionLocation,
    )
}
# Marks the bot's words of a follow-up answer (BotUttered metadata): which answer it was,
# so a second follow-up ("and sunday?") can ask the same answer again.
ANSWERED_BY = "tandem_follow_up"
MAX_WORDS = 8
_CONNECTIVE = re.compile(
    r"^\s*(?:and|also|plus|or|but|what about|how about|what if|same for|then what about)\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^\s*(?:do|does|did|is|are|was|can|could|will|would|what|how|when|which|where)\b",
    re.IGNORECASE,
)
_POINTS_BACK = re.compile(r"\b(?:it|they|them|that|those|these|this one|there)\b", re.IGNORECASE)


# "oh thats a shame. ok never mind then": the customer is letting it go, not asking.
_LETTING_GO = re.compile(
    r"\b(?:never ?mind|nvm|no worries|all good|fair enough|oh well|no problem|no prob|"
    r"that'?s all|thats all|ok then|okay then|what a shame|(?:that'?s|thats) (?:a )?"
    r"(?:shame|pity|too bad)|i'?ll (?:think about it|leave it|wait|check back)|"
    r"maybe (?:later|another time))\b"
    r"|^\W*(?:(?:oh|aw+|ah+)\W+)?(?:shame|pity|too bad)\b",
    re.IGNORECASE,
)
MAX_LETTING_GO_WORDS = 12


def lets_it_go(text: str) -> bool:
    """A short remark that closes the topic ("ok never mind then", "oh well, too bad"):
    no question in it, so there is nothing to misunderstand."""
    words = re.findall(r"[\w']+", text)
    return (
        0 < len(words) <= MAX_LETTING_GO_WORDS
        and "?" not in text
        and bool(_LETTING_GO.search(text))
    )


def is_follow_up(text: str) -> bool:
    """Short, and either joined on to what came before ("and tomorrow?", "what about
    large then") or a question about it ("do they expire", "is that free?")."""
    words = re.findall(r"[\w']+", text)
    if not words or len(words) > MAX_WORDS:
        return False
    if _CONNECTIVE.search(text):
        return True
    asks = text.rstrip().endswith("?") or bool(_QUESTION_START.search(text))
    return asks and (bool(_POINTS_BACK.search(text)) or len(words) <= 2)


def previous_answer(tracker: Tracker) -> str | None:
    """The answer the bot gave just before this message, if a follow-up can ask it again
    (an earlier follow-up's answer counts as the answer it gave)."""
    seen_message = False
    answered_by: str | None = None
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_message:
                return None  # the customer said something else in between
            seen_message = True
        elif kind == "bot" and seen_message and answered_by is None:
            answered_by = (event.get("metadata") or {}).get(ANSWERED_BY)
        elif kind == "action" and seen_message and event.get("name") != "action_listen":
            name = str(event.get("name"))
            if name == ActionFallback.NAME:
                name = answered_by or ""
            return name if name in FOLLOW_UP_ANSWERS else None
    return None


class ActionFallback(Action):
    """The NLU could not place the message: a follow-up of the last answer gets that answer
    again on its own words, a remark letting the topic go ("ok never mind then") gets
    "anything else?"; anything else gets the usual "didn't understand" and a person.
    The answer runs here, not as a follow-up action, so the dialogue policy never has to
    guess what comes after it."""

    NAME = "action_fallback"

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = latest_text(tracker)
        if not tracker.active_loop.get("name") and lets_it_go(text):
            # Not a misunderstanding either: the gateway must not count a fallback.
            understood = UnderstoodSignal(question="letting_go")
            dispatcher.utter_message(json_message=to_custom(understood))
            dispatcher.utter_message(response="utter_anything_else")
            return []
        answer = previous_answer(tracker)
        if answer is None or not is_follow_up(text):
            dispatcher.utter_message(response="utter_default")
            return []
        # Understood after all: the gateway must not count a misunderstanding.
        understood = UnderstoodSignal(question=f"follow_up:{answer}")
        dispatcher.utter_message(json_message=to_custom(understood))
        first = len(dispatcher.messages)
        events = await FOLLOW_UP_ANSWERS[answer]().run(dispatcher, tracker, domain)
        for message in dispatcher.messages[first:]:
            message[ANSWERED_BY] = answer
        return events
