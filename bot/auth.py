"""FastAPI dependencies for staff authentication: session cookie, roles and CSRF.

Usage in a staff router:

    router = APIRouter(prefix="/api/staff", dependencies=[Depends(require_csrf)])

    @router.post("/conversations/{id}/claim")
    def claim(staff: Staff) -> ...             # Staff = Annotated[CurrentStaff, Depends(...)]

    @router.get("/reports")
    def reports(owner: Owner) -> ...           # 401 when logged out, 403 for staff

`require_csrf` passes GET/HEAD/OPTIONS, so it can guard a whole router.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy import Engine

from tandem.config import Settings
from tandem.db import session_scope
from tandem.staff import service
from tandem.staff.models import StaffRole, StaffSession

SESSION_COOKIE = "tandem_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Owners may do everything staff may do.
_ROLE_RANK = {StaffRole.STAFF.value: 1, StaffRole.OWNER.value: 2}


@dataclass(frozen=True)
class CurrentStaff:
    """The logged-in person, copied out of the database session that found them."""

    id: int
    email: str
    display_name: str
    role: str
    capacity: int
    session_id: str  # sha256 of the cookie, never the cookie itself
    csrf_token: str

    @property
    def is_owner(self) -> bool:
        return self.role == StaffRole.OWNER

    @property
    def actor(self) -> str:
        """The actor string used in conversation events."""
        return f"staff:{self.id}"

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "role": self.role,
            "capacity": self.capacity,
        }

    @classmethod
    def from_session(cls, record: StaffSession) -> CurrentStaff:
        user = record.user
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            capacity=user.capacity,
            session_id=record.id,
            csrf_token=record.csrf_token,
        )


def cookie_secure(request: Request) -> bool:
    """Mark the cookie Secure when the browser reached us over https.

    Behind a TLS-terminating proxy, run uvicorn with --proxy-headers so the scheme is right.
    """
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, token: str, secure: bool, *, max_age: int | None = None
) -> None:
    # HttpOnly: page scripts never see it. Lax: not sent on cross-site POSTs.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookie(response: Response, secure: bool = False) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def lookup_staff(request: Request) -> CurrentStaff | None:
    """The staff member behind this request's cookie, or None (no dependency errors)."""
    if hasattr(request.state, "staff"):
        return request.state.staff  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    staff: CurrentStaff | None = None
    if token:
        with session_scope(_engine(request)) as db:
            record = service.resolve_session(db, token, settings=_settings(request))
            staff = CurrentStaff.from_session(record) if record is not None else None
    request.state.staff = staff
    return staff


# Sync on purpose: FastAPI runs it in the thread pool, so the database call never blocks
# the event loop.
def current_staff(request: Request) -> CurrentStaff:
    """The logged-in staff member, or 401 `{"detail": "Log in first."}`."""
    staff = lookup_staff(request)
    if staff is None:
        raise HTTPException(status_code=401, detail="Log in first.")
    return staff


# Annotated shorthands for endpoint signatures.
Staff = Annotated[CurrentStaff, Depends(current_staff)]


def require_role(role: str) -> Callable[..., CurrentStaff]:
    """A dependency that lets in `role` and anyone above it (owner > staff), else 403."""
    needed = _ROLE_RANK[service.check_role(role).value]

    def dependency(staff: Staff) -> CurrentStaff:
        if _ROLE_RANK.get(staff.role, 0) < needed:
            raise HTTPException(status_code=403, detail=f"Only the {role} can do this.")
        return staff

    return dependency


def csrf_ok(request: Request, staff: CurrentStaff) -> bool:
    if request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), staff.csrf_token.encode())


def require_csrf(request: Request, staff: Staff) -> CurrentStaff:
    """State-changing requests must echo the session's CSRF token in X-CSRF-Token (else 403).

    The token comes from the login response or GET /api/staff/me; a page on another site
    cannot read it, so it cannot forge the header.
    """
    if not csrf_ok(request, staff):
        raise HTTPException(
            status_code=403, detail="Missing or wrong CSRF token; reload the page and try again."
        )
    return staff


Owner = Annotated[CurrentStaff, Depends(require_role(StaffRole.OWNER))]
StaffWithCsrf = Annotated[CurrentStaff, Depends(require_csrf)]
