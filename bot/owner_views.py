"""The owner's API (/api/owner): sentiment log, reports, exports, staff and policy.

Every route is for owners only (401 logged out, 403 for staff); the router's
`require_csrf` makes every POST/PUT need the X-CSRF-Token header. Handlers are plain
`def`s, so FastAPI runs their database work in the thread pool.
"""

from __future__ import annotations

import threading
from datetime import tzinfo
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from bot.auth import Owner, require_csrf
from bot.staff_ws import end_staff_sockets
from handoff.editing import (
    EDITABLE,
    PolicyEditError,
    apply_changes,
    changed_paths,
    save_policy,
)
from handoff.policy import PolicySettings
from tandem.business.profile import load_profile
from tandem.config import Settings
from tandem.db import session_scope
from tandem.privacy.service import business_vocabulary
from tandem.reports import export, log
from tandem.reports.service import (
    Masker,
    ReportError,
    build_report,
    business_timezone,
    make_period,
    parse_filters,
    parse_page,
)
from tandem.staff import service as staff_service
from tandem.staff.models import StaffUser

router = APIRouter(prefix="/api/owner", tags=["owner"], dependencies=[Depends(require_csrf)])

# One policy edit at a time: read, change, write and apply must not interleave.
_policy_lock = threading.Lock()
_FILTER_NAMES = ("from", "to", "outcome", "sentiment", "reason", "staff_id", "tier", "q")


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _tz(request: Request) -> tzinfo:
    return business_timezone(_settings(request).business_file)


def _masker(request: Request) -> Masker:
    settings = _settings(request)
    if not settings.pii_masking:
        return Masker(False)
    # The shop's own words (assistant, products, colours, staff) are never masked.
    with session_scope(_engine(request)) as session:
        words = business_vocabulary(session, load_profile(settings.business_file))
    return Masker(True, words)


def _unprocessable(field: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": f"{field}: {message}", "field": field}, status_code=422)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


# ------------------------------------------------------------------ sentiment log


@router.get("/log")
def get_log(request: Request, owner: Owner) -> Any:
    """Conversations with their sentiment, outcome and reasons; filters in the query."""
    params = request.query_params
    try:
        filters = parse_filters({name: params.get(name) for name in _FILTER_NAMES}, _tz(request))
        page, page_size = parse_page(params.get("page"), params.get("page_size"))
    except ReportError as error:
        return _unprocessable(error.field, error.message)
    masker = _masker(request)
    with session_scope(_engine(request)) as session:
        return log.query_log(session, filters, page=page, page_size=page_size, masker=masker)


@router.get("/log/{conversation_id}", responses={404: {}})
def get_log_conversation(request: Request, conversation_id: str, owner: Owner) -> Any:
    """One conversation: its messages (masked), events and escalations."""
    with session_scope(_engine(request)) as session:
        # ConversationNotFound becomes 404 in the app's exception handler.
        return log.conversation_detail(session, conversation_id, _masker(request))


# ------------------------------------------------------------------ reports


@router.get("/reports")
def get_reports(request: Request, owner: Owner) -> Any:
    """Report figures for a period (default: the last 30 days, business timezone)."""
    params = request.query_params
    try:
        period = make_period(params.get("from") or None, params.get("to") or None, _tz(request))
    except ReportError as error:
        return _unprocessable(error.field, error.message)
    with session_scope(_engine(request)) as session:
        return build_report(session, period)


# ------------------------------------------------------------------ exports


def _export(request: Request, kind: str) -> Any:
    params = request.query_params
    try:
        filters = parse_filters({name: params.get(name) for name in _FILTER_NAMES}, _tz(request))
    except ReportError as error:
        return _unprocessable(error.field, error.message)
    engine = _engine(request)
    stream = export.stream_csv(lambda: session_scope(engine), kind, filters, _masker(request))
    since = f"{filters.period.start}-" if (params.get("from") or "").strip() else ""
    filename = f"tandem-{kind}-{since}to-{filters.period.end}.csv"
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/export/conversations.csv", responses={200: {"content": {"text/csv": {}}}})
def export_conversations(request: Request, owner: Owner) -> Any:
    return _export(request, "conversations")


@router.get("/export/messages.csv", responses={200: {"content": {"text/csv": {}}}})
def export_messages(request: Request, owner: Owner) -> Any:
    return _export(request, "messages")


# ------------------------------------------------------------------ staff accounts


class NewStaff(BaseModel):
    email: str = Field(max_length=staff_service.MAX_EMAIL_CHARS)
    display_name: str | None = Field(default=None, max_length=staff_service.MAX_NAME_CHARS)
    password: str = Field(max_length=staff_service.MAX_PASSWORD_CHARS)
    role: str = "staff"
    capacity: int = Field(default=3, ge=0, le=staff_service.MAX_CAPACITY)


class NewPassword(BaseModel):
    password: str = Field(max_length=staff_service.MAX_PASSWORD_CHARS)


def staff_view(user: StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "active": user.active,
        "capacity": user.capacity,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


@router.get("/staff")
def get_staff(request: Request, owner: Owner) -> Any:
    with session_scope(_engine(request)) as session:
        return {"staff": [staff_view(u) for u in staff_service.list_users(session)]}


@router.post("/staff", status_code=201, responses={409: {}, 422: {}})
def create_staff(request: Request, body: NewStaff, owner: Owner) -> Any:
    try:
        with session_scope(_engine(request)) as session:
            user = staff_service.create_user(
                session,
                email=body.email,
                password=body.password,
                display_name=body.display_name,
                role=body.role,
                capacity=body.capacity,
                actor=session.get(StaffUser, owner.id),
            )
            return staff_view(user)
    except staff_service.UserExists as error:
        return _error(409, error.message)
    except staff_service.StaffError as error:
        return _error(422, error.message)


@router.post("/staff/{user_id}/deactivate", responses={404: {}, 409: {}})
async def deactivate_staff(request: Request, user_id: int, owner: Owner) -> Any:
    """Lock the account, end its sessions and take it off duty (no new chats reach it)."""
    if user_id == owner.id:
        return _error(409, "You cannot deactivate your own account.")

    def store() -> dict[str, Any]:
        with session_scope(_engine(request)) as session:
            user = staff_service.get_user(session, user_id)
            staff_service.deactivate_user(session, user, actor=session.get(StaffUser, owner.id))
            return staff_view(user)

    try:
        view = await run_in_threadpool(store)
    except staff_service.UserNotFound:
        return _error(404, f"No staff account with id {user_id}.")
    except staff_service.StaffError as error:
        return _error(409, error.message)
    queue = request.app.state.desk.queue
    await queue.set_presence(str(user_id), "offline", int(view["capacity"]))
    await end_staff_sockets(request.app, user_id)
    return view


@router.post("/staff/{user_id}/reset-password", responses={404: {}, 422: {}})
async def reset_staff_password(
    request: Request, user_id: int, body: NewPassword, owner: Owner
) -> Any:
    def store() -> dict[str, Any]:
        with session_scope(_engine(request)) as session:
            user = staff_service.get_user(session, user_id)
            actor = session.get(StaffUser, owner.id)
            staff_service.reset_password(session, user, body.password, actor=actor)
            return staff_view(user) | {"sessions_ended": True}

    try:
        view = await run_in_threadpool(store)
    except staff_service.UserNotFound:
        return _error(404, f"No staff account with id {user_id}.")
    except staff_service.StaffError as error:
        return _error(422, error.message)
    # Its open consoles close too, not only its cookies.
    await end_staff_sockets(request.app, user_id)
    return view


# ------------------------------------------------------------------ handoff policy


class PolicyChanges(BaseModel):
    changes: dict[str, Any]


def _policy(request: Request) -> PolicySettings:
    return request.app.state.flows.policy  # type: ignore[no-any-return]


def _policy_view(policy: PolicySettings) -> dict[str, Any]:
    return {
        "policy": policy.model_dump(mode="json"),
        "editable": [item.to_dict() for item in EDITABLE],
    }


@router.get("/policy")
def get_policy(request: Request, owner: Owner) -> Any:
    return _policy_view(_policy(request))


@router.put("/policy", responses={422: {}})
def put_policy(request: Request, body: PolicyChanges, owner: Owner) -> Any:
    """Change some editable settings: checked, saved to handoff.yml, applied at once."""
    settings = _settings(request)
    with _policy_lock:
        before = _policy(request)
        try:
            after = apply_changes(before, body.changes)
        except PolicyEditError as error:
            return _unprocessable(error.field, error.reason)
        try:
            save_policy(settings.handoff_file, after)
        except OSError as error:
            return _error(500, f"Could not save {settings.handoff_file.name}: {error.strerror}.")
        request.app.state.flows.use_policy(after)
        with session_scope(_engine(request)) as session:
            staff_service.record_audit(
                session,
                owner.id,
                "policy.updated",
                target=str(settings.handoff_file.name),
                detail={"changes": changed_paths(before, after)},
            )
    return _policy_view(after)
