"""Handing the conversation to a person (custom payload read by the gateway)."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import actions.common as common
from actions.common import handoff_payload, profile


def staff_availability_note() -> str | None:
    """None when the shop is open (someone can answer now), else when they will."""
    p = profile()
    now = common.clock()
    if p.is_open_now(now):
        return None
    return p.say("handoff_closed", next_opening=p.reopening(now))


class ActionRequestHuman(Action):
    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = staff_availability_note() or profile().say("handoff_open")
        dispatcher.utter_message(json_message=handoff_payload("request_human", text))
        return []


class ActionComplaint(Action):
    def name(self) -> str:
        return "action_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        closed_note = staff_availability_note()
        text = profile().say("complaint") + (f" {closed_note}" if closed_note else "")
        dispatcher.utter_message(json_message=handoff_payload("complaint", text))
        return []
