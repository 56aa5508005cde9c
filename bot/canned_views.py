"""Canned replies: staff read them (/api/staff/canned-replies), the owner manages them.

GET    /api/staff/canned-replies        any staff    {"replies": [{id, title, text}]}
POST   /api/owner/canned-replies        owner, CSRF  201 {"reply": {...}}; 422, 409
PUT    /api/owner/canned-replies/{id}   owner, CSRF  200 {"reply": {...}}; 404, 422, 409
DELETE /api/owner/canned-replies/{id}   owner, CSRF  204; 404
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from bot.auth import Owner, Staff, require_csrf
from tandem.canned import service
from tandem.db import session_scope

router = APIRouter(tags=["canned replies"], dependencies=[Depends(require_csrf)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not logged in"},
    403: {"description": "not the owner, or a missing CSRF token"},
    404: {"description": "unknown canned reply"},
    409: {"description": "another canned reply has this title"},
    422: {"description": "empty or too long title or text"},
}


class ReplyBody(BaseModel):
    # The service gives the precise limits (80 and 2000); this only bounds the body.
    title: str = Field(max_length=1000)
    text: str = Field(max_length=10000)


def _run(request: Request, action: Any) -> Any:
    """Run `action(session)` in one unit of work; service errors become HTTP errors."""
    try:
        with session_scope(request.app.state.engine) as session:
            return action(session)
    except service.CannedError as error:
        raise HTTPException(status_code=error.status, detail=error.message) from error


# Sync routes on purpose: FastAPI runs them in the thread pool, off the event loop.
@router.get("/api/staff/canned-replies", responses=_ERRORS)
def list_replies(request: Request, staff: Staff) -> dict[str, Any]:
    """Every canned reply, ordered by title."""
    return {"replies": _run(request, lambda s: [r.view() for r in service.list_replies(s)])}


@router.post("/api/owner/canned-replies", status_code=201, responses=_ERRORS)
def create_reply(request: Request, owner: Owner, body: ReplyBody) -> dict[str, Any]:
    reply = _run(
        request,
        lambda s: service.create_reply(s, body.title, body.text, created_by=owner.id).view(),
    )
    return {"reply": reply}


@router.put("/api/owner/canned-replies/{reply_id}", responses=_ERRORS)
def update_reply(request: Request, reply_id: int, owner: Owner, body: ReplyBody) -> dict[str, Any]:
    reply = _run(
        request,
        lambda s: service.update_reply(s, reply_id, body.title, body.text, actor=owner.id).view(),
    )
    return {"reply": reply}


@router.delete("/api/owner/canned-replies/{reply_id}", status_code=204, responses=_ERRORS)
def delete_reply(request: Request, reply_id: int, owner: Owner) -> Response:
    _run(request, lambda s: service.delete_reply(s, reply_id, actor=owner.id))
    return Response(status_code=204)
