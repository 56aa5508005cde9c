"""The staff API: the queue, claiming, replying, notes, transfer, return to bot, close.

Every route needs a logged-in staff member (401 otherwise); state-changing routes also
need the session's CSRF token in X-CSRF-Token (403 otherwise). The owner may do
everything staff may do, and may also act on conversations assigned to someone else.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from bot.auth import CurrentStaff, Staff, StaffWithCsrf, require_csrf
from bot.schemas import checked_text
from bot.staff_privacy import context_for, require_note_right
from bot.staff_team import team_view
from tandem.desk import HandoffDesk
from tandem.staff.actor import StaffRef
from tandem.staff.service import MAX_CAPACITY

router = APIRouter(prefix="/api/staff", tags=["staff"], dependencies=[Depends(require_csrf)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not logged in"},
    403: {"description": "missing CSRF token, or another member's conversation"},
    404: {"description": "unknown conversation"},
    409: {"description": "the conversation's state does not allow it"},
}


class TextBody(BaseModel):
    text: str = Field(max_length=4000)


class TransferBody(BaseModel):
    to_staff_id: int = Field(ge=1)


class CloseBody(BaseModel):
    resolution: str = Field(min_length=1, max_length=2000, description="what was done")


class PresenceBody(BaseModel):
    state: Literal["online", "away", "offline"]
    capacity: int | None = Field(
        default=None, ge=0, le=MAX_CAPACITY, description="default: the account's capacity"
    )


def _desk(request: Request) -> HandoffDesk:
    return request.app.state.desk  # type: ignore[no-any-return]


def ref(staff: CurrentStaff) -> StaffRef:
    return StaffRef(staff.id, staff.display_name, staff.role, staff.capacity)


def _text(request: Request, text: str) -> str:
    return checked_text(text, request.app.state.settings.max_message_chars)


@router.get("/queue", responses=_ERRORS)
async def get_queue(request: Request, staff: Staff) -> dict[str, Any]:
    """Waiting conversations in serving order (reasons, priority, wait, value, mood)."""
    return await _desk(request).queue_view(ref(staff))


@router.put("/presence", responses=_ERRORS)
async def put_presence(request: Request, staff: StaffWithCsrf, body: PresenceBody) -> Any:
    capacity = staff.capacity if body.capacity is None else body.capacity
    queue = _desk(request).queue
    await queue.set_presence(str(staff.id), body.state, capacity)
    presence = await queue.presence(str(staff.id))
    return {"state": presence.state, "capacity": presence.capacity, "load": presence.load}


@router.post("/presence/heartbeat", responses=_ERRORS)
async def heartbeat(request: Request, staff: StaffWithCsrf) -> dict[str, Any]:
    """Keep presence alive; `alive: false` means it expired: PUT /presence again."""
    return {"alive": await _desk(request).queue.heartbeat(str(staff.id))}


@router.get("/conversations/{conversation_id}", responses=_ERRORS)
async def get_context(request: Request, conversation_id: str, staff: Staff) -> dict[str, Any]:
    """Transcript (with notes), mood timeline, escalation reasons, customer, summary.

    Contact details and the unmasked transcript only for the member who holds the
    conversation, or the owner (each look is audited); others get `personal_data: false`.
    """
    context = await _desk(request).context(conversation_id)
    return await context_for(request.app.state.engine, conversation_id, staff, context)


@router.post("/conversations/{conversation_id}/claim", responses=_ERRORS)
async def claim(request: Request, conversation_id: str, staff: StaffWithCsrf) -> dict[str, Any]:
    """Take a queued conversation; of simultaneous claims exactly one wins (others 409)."""
    return await _desk(request).claim(conversation_id, ref(staff))


@router.post("/conversations/{conversation_id}/reply", responses=_ERRORS)
async def reply(
    request: Request, conversation_id: str, staff: StaffWithCsrf, body: TextBody
) -> dict[str, Any]:
    return {
        "message": await _desk(request).reply(
            conversation_id, ref(staff), _text(request, body.text)
        )
    }


@router.post("/conversations/{conversation_id}/notes", responses=_ERRORS)
async def note(
    request: Request, conversation_id: str, staff: StaffWithCsrf, body: TextBody
) -> dict[str, Any]:
    """An internal note for colleagues (the holder or the owner); the customer never sees it."""
    await require_note_right(request.app.state.engine, conversation_id, staff)
    return {
        "note": await _desk(request).note(conversation_id, ref(staff), _text(request, body.text))
    }


@router.post("/conversations/{conversation_id}/transfer", responses=_ERRORS)
async def transfer(
    request: Request, conversation_id: str, staff: StaffWithCsrf, body: TransferBody
) -> dict[str, Any]:
    return await _desk(request).transfer(conversation_id, ref(staff), body.to_staff_id)


@router.post("/conversations/{conversation_id}/return-to-bot", responses=_ERRORS)
async def return_to_bot(
    request: Request, conversation_id: str, staff: StaffWithCsrf
) -> dict[str, Any]:
    return await _desk(request).return_to_bot(conversation_id, ref(staff))


@router.post("/conversations/{conversation_id}/close", responses=_ERRORS)
async def close(
    request: Request, conversation_id: str, staff: StaffWithCsrf, body: CloseBody
) -> dict[str, Any]:
    """Close with a resolution note; the customer is asked for a rating."""
    return await _desk(request).close(conversation_id, ref(staff), body.resolution.strip())


@router.get("/team", responses=_ERRORS)
async def get_team(request: Request, staff: Staff) -> dict[str, Any]:
    """Active accounts with presence, load and capacity (the transfer picker)."""
    return {"team": await team_view(request.app.state.engine, _desk(request).queue)}
