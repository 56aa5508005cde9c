"""Handing the conversation to a person (a typed handoff signal the gateway reads).

The action only says why and acknowledges; whether a person can take the chat now
(opening hours, STAFF_HOURS, who is online) is decided once, by the gateway's desk,
which then says the queue position or opens the offline form.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import handoff_payload, profile


class ActionRequestHuman(Action):
    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = profile().say("handoff_open")
        dispatcher.utter_message(json_message=handoff_payload("request_human", text))
        return []


class ActionComplaint(Action):
    def name(self) -> str:
        return "action_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = profile().say("complaint")
        dispatcher.utter_message(json_message=handoff_payload("complaint", text))
        return []
