"""What a change to a conversation tells the world, and the one publisher that tells it.

A transition or a turn collects `Effects` while its transaction runs; `Publisher.publish`
sends them on the bus after the commit, so nobody hears of a change that was rolled back.
Topics: the conversation's own (the customer's widget) and `staff` (/ws/staff).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tandem.bus import EventBus, conversation_topic
from tandem.conversations.models import Message
from tandem.conversations.views import message_view

STAFF_TOPIC = "staff"


@dataclass
class Effects:
    conversation_id: str
    to_customer: list[dict[str, Any]] = field(default_factory=list)
    to_staff: list[dict[str, Any]] = field(default_factory=list)
    # The stored messages the customer was sent, as views (what the API returns).
    said: list[dict[str, Any]] = field(default_factory=list)

    def say(self, message: Message) -> dict[str, Any]:
        """A stored message for the customer's widget (call after the message is flushed)."""
        view = message_view(message)
        self.said.append(view)
        self.to_customer.append({"type": "message", "message": view})
        return view

    def unsay(self, view: dict[str, Any]) -> None:
        """Take back a message collected for the customer before it was published."""
        self.said.remove(view)
        self.to_customer.remove({"type": "message", "message": view})

    def tell_staff(self, event: dict[str, Any]) -> None:
        self.to_staff.append({"conversation_id": self.conversation_id, **event})

    def extend(self, other: Effects) -> Effects:
        self.to_customer.extend(other.to_customer)
        self.to_staff.extend(other.to_staff)
        self.said.extend(other.said)
        return self


class Publisher:
    """The one way anything reaches the bus."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def publish(self, effects: Effects) -> None:
        topic = conversation_topic(effects.conversation_id)
        for event in effects.to_customer:
            await self.bus.publish(topic, event)
        for event in effects.to_staff:
            await self.bus.publish(STAFF_TOPIC, event)

    async def to_customer(self, conversation_id: str, event: dict[str, Any]) -> None:
        await self.bus.publish(conversation_topic(conversation_id), event)

    async def to_staff(self, event: dict[str, Any]) -> None:
        await self.bus.publish(STAFF_TOPIC, event)
