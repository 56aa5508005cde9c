"""Staff login, logout and "who am I" over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.auth import (
    SESSION_COOKIE,
    CurrentStaff,
    Staff,
    clear_session_cookie,
    cookie_secure,
    csrf_ok,
    lookup_staff,
    set_session_cookie,
)
from bot.clients import client_address
from bot.staff_ws import end_staff_sockets
from tandem.config import Settings
from tandem.db import session_scope
from tandem.staff import service
from tandem.staff.ratelimit import LoginThrottle

router = APIRouter(prefix="/api/staff", tags=["staff auth"])


class LoginBody(BaseModel):
    email: str = Field(max_length=service.MAX_EMAIL_CHARS)
    password: str = Field(max_length=service.MAX_PASSWORD_CHARS)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def login_throttle(request: Request) -> LoginThrottle:
    """One throttle per app, made on first use (Redis when REDIS_URL is set)."""
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle.from_settings(_settings(request))
        request.app.state.login_throttle = throttle
    return throttle


@router.post("/login")
async def login(request: Request, body: LoginBody) -> Response:
    settings = _settings(request)
    throttle = login_throttle(request)
    client = client_address(request, settings)
    decision = await throttle.check(body.email, client)
    if not decision.allowed:
        wait = decision.retry_after_header
        return JSONResponse(
            {"detail": f"Too many login attempts. Try again in {wait} seconds."},
            status_code=429,
            headers={"Retry-After": wait},
        )
    if decision.retry_after:
        # Failures from elsewhere only slow this account down; they never lock it.
        await asyncio.sleep(decision.retry_after)
    old_token = request.cookies.get(SESSION_COOKIE)

    def log_in() -> tuple[CurrentStaff, str]:
        with session_scope(request.app.state.engine) as db:
            # A fresh token on every login: never keep a session id from before it.
            service.end_session(db, old_token)
            user = service.authenticate(db, body.email, body.password)
            new = service.start_session(
                db, user, user_agent=request.headers.get("user-agent"), settings=settings
            )
            return CurrentStaff.from_session(new.record), new.token

    try:
        staff, token = await run_in_threadpool(log_in)
    except service.AuthError as error:
        await throttle.failed(body.email, client)
        return JSONResponse({"detail": error.message}, status_code=401)
    await throttle.succeeded(body.email, client)
    response = JSONResponse({"user": staff.public(), "csrf_token": staff.csrf_token})
    set_session_cookie(
        response,
        token,
        cookie_secure(request),
        max_age=settings.staff_session_max_days * 86400,
    )
    return response


@router.post("/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End this session, its open staff sockets and the cookie; twice is not an error."""
    staff = await run_in_threadpool(lookup_staff, request)
    if staff is not None and not csrf_ok(request, staff):
        return JSONResponse(
            {"detail": "Missing or wrong CSRF token; reload the page and try again."},
            status_code=403,
        )
    token = request.cookies.get(SESSION_COOKIE)
    if token:

        def end() -> None:
            with session_scope(request.app.state.engine) as db:
                service.end_session(db, token)

        await run_in_threadpool(end)
    if staff is not None:
        await end_staff_sockets(request.app, staff.id, staff.session_id)
    response = Response(status_code=204)
    clear_session_cookie(response, cookie_secure(request))
    return response


@router.get("/me")
def me(staff: Staff) -> dict[str, Any]:
    """Who is logged in, and the CSRF token a reloaded page needs for its next POST."""
    return {"user": staff.public(), "csrf_token": staff.csrf_token}
