"""Personal data (/api/owner/privacy): unmasking, one customer's export and deletion."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Engine

from bot.auth import Owner, require_csrf
from tandem.db import session_scope
from tandem.privacy import service
from tandem.privacy.retention import oldest_conversation_at

router = APIRouter(
    prefix="/api/owner/privacy", tags=["privacy"], dependencies=[Depends(require_csrf)]
)


class UnmaskBody(BaseModel):
    reason: str = ""


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


# Endpoints are sync: FastAPI runs them in the thread pool, so database work never blocks
# the event loop.
@router.post("/conversations/{conversation_id}/unmask")
def unmask(
    conversation_id: str, body: UnmaskBody, request: Request, owner: Owner
) -> dict[str, Any]:
    try:
        with session_scope(_engine(request)) as session:
            result = service.unmask_conversation(session, conversation_id, owner.id, body.reason)
    except service.PrivacyError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except service.ConversationNotFound:
        raise HTTPException(status_code=404, detail="No such conversation.") from None
    return {
        "conversation_id": result.conversation_id,
        "messages": result.messages,
        "audit_id": result.audit_id,
    }


@router.get("/customers")
def customers(request: Request, owner: Owner, q: str = Query("", max_length=200)) -> dict[str, Any]:
    if not q.strip():
        raise HTTPException(status_code=422, detail="Type an id, an e-mail address or a name.")
    with session_scope(_engine(request)) as session:
        return {"customers": service.find_customers(session, q)}


@router.get("/customers/{customer_id}/export")
def export(customer_id: int, request: Request, owner: Owner) -> Response:
    try:
        with session_scope(_engine(request)) as session:
            data = service.export_customer(session, customer_id, owner.id)
    except service.CustomerNotFound:
        raise HTTPException(status_code=404, detail="No such customer.") from None
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f"attachment; filename=customer-{customer_id}.json",
            "Cache-Control": "no-store",
        },
    )


@router.delete("/customers/{customer_id}")
def delete(customer_id: int, request: Request, owner: Owner) -> dict[str, Any]:
    try:
        with session_scope(_engine(request)) as session:
            counts = service.delete_customer(
                session,
                customer_id,
                owner.id,
                tracker_db=request.app.state.settings.rasa_tracker_db,
            )
    except service.CustomerNotFound:
        raise HTTPException(status_code=404, detail="No such customer.") from None
    return {"deleted": counts}


@router.get("/audit")
def audit(request: Request, owner: Owner, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    with session_scope(_engine(request)) as session:
        return {"entries": service.audit_entries(session, limit)}


@router.get("/retention")
def retention(request: Request, owner: Owner) -> dict[str, Any]:
    with session_scope(_engine(request)) as session:
        oldest = oldest_conversation_at(session)
    return {
        "retention_days": request.app.state.settings.retention_days,
        "oldest_conversation_at": oldest.isoformat() if oldest else None,
    }
