"""The ticket inbox API (/api/staff/tickets), for staff and owners.

GET  /api/staff/tickets?status=open|in_progress|done&mine=true   list, counts per status
GET  /api/staff/tickets/{id}           the request, transcript and contact (audited)
POST /api/staff/tickets/{id}/claim     take it (409 when a colleague has it)
POST /api/staff/tickets/{id}/reply     {"text", "subject"?}: e-mail the customer
POST /api/staff/tickets/{id}/done      {"resolution"?}: finish it

Changes need the session's CSRF token (X-CSRF-Token). Replies go out by SMTP when
SMTP_HOST is set, else into the file outbox (MAIL_OUTBOX_DIR); see tandem/tickets/mail.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.auth import CurrentStaff, Staff, StaffWithCsrf, require_csrf
from tandem.business.profile import load_profile
from tandem.config import Settings
from tandem.db import session_scope
from tandem.tickets import service
from tandem.tickets.mail import MailError, make_mailer

router = APIRouter(
    prefix="/api/staff/tickets", tags=["tickets"], dependencies=[Depends(require_csrf)]
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not logged in"},
    403: {"description": "missing CSRF token, or a colleague's ticket"},
    404: {"description": "unknown ticket"},
    409: {"description": "done already, taken by a colleague, or no e-mail address"},
    422: {"description": "bad input"},
    502: {"description": "the mail server did not take the e-mail"},
}


class ReplyBody(BaseModel):
    # The service gives the precise limits; these only bound the body.
    text: str = Field(max_length=20_000)
    subject: str | None = Field(default=None, max_length=1000)


class DoneBody(BaseModel):
    resolution: str | None = Field(default=None, max_length=5000)


def _actor(staff: CurrentStaff) -> service.Actor:
    return service.Actor(staff.id, staff.display_name, staff.is_owner)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _run(request: Request, action: Callable[[Any], Any]) -> Any:
    """Run `action(session)` in one unit of work; ticket errors become HTTP errors."""
    try:
        with session_scope(request.app.state.engine) as session:
            return action(session)
    except service.TicketError as error:
        raise HTTPException(status_code=error.status, detail=error.message) from error


async def _announce(request: Request, ticket_id: int, change: str) -> None:
    """Other consoles reload their inbox (the event only says "look again")."""
    desk = getattr(request.app.state, "desk", None)
    if desk is not None:
        await desk.publisher.to_staff(
            {"type": "ticket", "ticket_id": ticket_id, "change": change}
        )


# Sync reads on purpose: FastAPI runs them in the thread pool, off the event loop.
@router.get("", responses=_ERRORS)
def list_tickets(
    request: Request,
    staff: Staff,
    status: Literal["open", "in_progress", "done"] | None = None,
    mine: bool = False,
    limit: int = Query(100, ge=1, le=service.LIST_LIMIT),
) -> dict[str, Any]:
    """Tickets in one status (all when omitted), optionally only the caller's."""
    assigned = staff.id if mine else None
    return _run(
        request,
        lambda s: service.list_tickets(s, status=status, assigned_to=assigned, limit=limit),
    )  # type: ignore[no-any-return]


@router.get("/{ticket_id}", responses=_ERRORS)
def get_ticket(request: Request, ticket_id: int, staff: Staff) -> dict[str, Any]:
    """The request, the transcript and the contact; every read is in the audit log."""
    return _run(request, lambda s: service.ticket_detail(s, ticket_id, _actor(staff)))  # type: ignore[no-any-return]


@router.post("/{ticket_id}/claim", responses=_ERRORS)
async def claim(request: Request, ticket_id: int, staff: StaffWithCsrf) -> dict[str, Any]:
    ticket = await run_in_threadpool(
        _run, request, lambda s: service.claim(s, ticket_id, _actor(staff))
    )
    await _announce(request, ticket_id, "claimed")
    return {"ticket": ticket}


@router.post("/{ticket_id}/reply", responses=_ERRORS)
async def reply(
    request: Request, ticket_id: int, staff: StaffWithCsrf, body: ReplyBody
) -> dict[str, Any]:
    """E-mail the customer; the reply is logged on the ticket only once it is handed over."""
    settings = _settings(request)
    profile = load_profile(settings.business_file)
    actor = _actor(staff)
    message = await run_in_threadpool(
        _run,
        request,
        lambda s: service.prepare_reply(
            s,
            ticket_id,
            actor,
            body=body.text,
            subject=body.subject,
            sender=settings.mail_from or profile.contact.email,
            sender_name=profile.business.name,
        ),
    )
    # Outside any transaction: a slow mail server must not hold the database.
    try:
        sent = await run_in_threadpool(make_mailer(settings).send, message)
    except MailError as error:
        raise HTTPException(status_code=502, detail=error.message) from error
    result = await run_in_threadpool(
        _run, request, lambda s: service.record_reply(s, ticket_id, actor, message, sent)
    )
    await _announce(request, ticket_id, "replied")
    return result  # type: ignore[no-any-return]


@router.post("/{ticket_id}/done", responses=_ERRORS)
async def done(
    request: Request, ticket_id: int, staff: StaffWithCsrf, body: DoneBody
) -> dict[str, Any]:
    ticket = await run_in_threadpool(
        _run, request, lambda s: service.mark_done(s, ticket_id, _actor(staff), body.resolution)
    )
    await _announce(request, ticket_id, "done")
    return {"ticket": ticket}
