"""What the customer API shows of stored rows (never NLU internals or staff notes)."""

from __future__ import annotations

from typing import Any

from tandem.conversations.models import Conversation, Message

_NAMES_STAFF = frozenset({"staff_joined", "transferred"})


def is_internal(message: Message) -> bool:
    """A staff member's internal note: never shown to the customer."""
    return bool((message.payload or {}).get("internal"))


def message_view(message: Message) -> dict[str, Any]:
    payload = message.payload or {}
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "sender": message.sender,
        "text": message.text,
        "buttons": payload.get("buttons", []),
        # What a widget may render specially: queue_position, staff_joined, csat_request...
        "kind": payload.get("kind"),
        # Who wrote it, or who joined: the widget never has to parse names out of text.
        "author": payload.get("staff_name")
        if message.sender == "staff" or payload.get("kind") in _NAMES_STAFF
        else None,
        "position": payload.get("position"),
        "wait_seconds": payload.get("wait_seconds"),
        "client_message_id": message.client_message_id,
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "state": conversation.state,
        "channel": conversation.channel,
        "customer_verified": conversation.customer_verified,
        "csat": conversation.csat,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }
