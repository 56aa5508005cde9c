"""The staff conversation view under the personal-data rule (tandem/staff/access.py).

Kept apart from the desk: the desk builds the full context; this decides what of it the
member may see, and records the look in the audit log.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from bot.auth import CurrentStaff
from tandem.conversations import service
from tandem.db import session_scope
from tandem.desk import NotHolder
from tandem.privacy.masking import MaskingModelMissing, mask_many, mask_patterns
from tandem.staff import access

# What a member who does not hold the conversation sees of the customer.
_PUBLIC_CUSTOMER_FIELDS = ("tier", "lifetime_value", "verified", "verified_via")


def _allowed_and_audited(engine: Engine, conversation_id: str, staff: CurrentStaff) -> bool:
    with session_scope(engine) as session:
        conversation = service.get_conversation(session, conversation_id)
        if not access.can_see_personal_data(staff, conversation):
            return False
        access.record_view(session, staff, conversation)
        return True


def _mask(texts: list[str]) -> list[str]:
    try:
        return mask_many(texts)
    except MaskingModelMissing:
        return [mask_patterns(text) for text in texts]


def _without_personal_data(context: dict[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(context)
    # Every text the customer (or staff) wrote: transcript, summary points, summary line.
    holders: list[dict[str, Any]] = list(shown.get("transcript") or [])
    summary = shown.get("summary")
    if summary:
        holders += [*summary.get("points", []), summary]
    masked = _mask([str(item.get("text") or "") for item in holders])
    for item, text in zip(holders, masked, strict=True):
        item["text"] = text
    customer = shown.get("customer")
    if customer is not None:
        shown["customer"] = {key: customer.get(key) for key in _PUBLIC_CUSTOMER_FIELDS}
    shown["personal_data"] = False
    return shown


async def context_for(
    engine: Engine, conversation_id: str, staff: CurrentStaff, context: dict[str, Any]
) -> dict[str, Any]:
    """`context` as `staff` may see it: in full (and audited) for the holder or the owner."""
    if await run_in_threadpool(_allowed_and_audited, engine, conversation_id, staff):
        return context | {"personal_data": True}
    return await run_in_threadpool(_without_personal_data, context)


def event_for(staff: CurrentStaff, event: dict[str, Any]) -> dict[str, Any]:
    """A live staff event as `staff` may see it: message text masked unless they hold it.

    Non-owners only get per-conversation events of their own or of unassigned (queued)
    conversations (bot/staff_ws.py `visible`); the queued ones are masked here.
    """
    message = event.get("message")
    if staff.is_owner or event.get("assigned_staff_id") == staff.id:
        return event
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return event
    [masked] = _mask([message["text"]])
    return event | {"message": message | {"text": masked}}


def _may_note(engine: Engine, conversation_id: str, staff: CurrentStaff) -> bool:
    with session_scope(engine) as session:
        return access.can_add_note(staff, service.get_conversation(session, conversation_id))


async def require_note_right(engine: Engine, conversation_id: str, staff: CurrentStaff) -> None:
    """403 unless `staff` holds the conversation or is the owner (404 if unknown)."""
    if not await run_in_threadpool(_may_note, engine, conversation_id, staff):
        raise NotHolder(
            "Only the staff member who has this conversation, or the owner, can add notes."
        )
