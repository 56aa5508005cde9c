"""Staff accounts over storage: passwords, authentication, login sessions and the audit log.

No web code: the gateway's auth dependencies and the command line call these functions.
Bad input is raised as `StaffError` (its message is safe to show); a failed login is always
the same `AuthError`, whatever the reason, so that nobody can probe which e-mails exist.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from tandem.config import Settings, get_settings
from tandem.db import utcnow
from tandem.staff.models import AuditLog, StaffRole, StaffSession, StaffUser

# argon2id with the library's defaults (RFC 9106 low-memory profile). Tests swap in a
# cheaper hasher by replacing this module attribute; every function looks it up per call.
password_hasher = PasswordHasher()

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_CHARS = 254
MIN_PASSWORD_CHARS = 10
# Hashing is deliberately slow; an unbounded password would make it a denial-of-service lever.
MAX_PASSWORD_CHARS = 1024
MAX_NAME_CHARS = 100
MAX_CAPACITY = 100
# Touch last_seen_at at most this often: every staff request resolves the session, and
# SQLite serialises writers.
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)


class StaffError(ValueError):
    """Bad input or a refused account change; `message` is fit for a person to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserExists(StaffError):
    def __init__(self, email: str) -> None:
        super().__init__(f"An account with the e-mail {email} already exists.")
        self.email = email


class UserNotFound(LookupError):
    def __init__(self, key: int | str) -> None:
        super().__init__(f"no staff account {key!r}")
        self.key = key


class AuthError(Exception):
    """Wrong e-mail, wrong password or a deactivated account: deliberately one message."""

    message = "Wrong e-mail or password."

    def __init__(self) -> None:
        super().__init__(self.message)


@dataclass(frozen=True)
class NewSession:
    """What a login hands out. `token` exists only here: the database keeps its hash."""

    token: str
    csrf_token: str
    expires_at: datetime
    record: StaffSession


# ------------------------------------------------------------------------------ checks


def normalize_email(email: str) -> str:
    """The stored form of an address (trimmed, lower-case), or StaffError."""
    cleaned = email.strip().lower()
    if len(cleaned) > MAX_EMAIL_CHARS or not EMAIL_RE.match(cleaned):
        raise StaffError(f"{email.strip()!r} does not look like an e-mail address.")
    return cleaned


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffError(f"The password must be at least {MIN_PASSWORD_CHARS} characters long.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise StaffError(f"The password must be at most {MAX_PASSWORD_CHARS} characters long.")
    return password


def check_role(role: str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in StaffRole)
        raise StaffError(f"Unknown role {role!r}; use one of: {allowed}.") from None


def _check_name(display_name: str | None, email: str) -> str:
    name = (display_name or "").strip() or email.split("@", 1)[0]
    if len(name) > MAX_NAME_CHARS:
        raise StaffError(f"The display name must be at most {MAX_NAME_CHARS} characters long.")
    return name


def _check_capacity(capacity: int) -> int:
    if not 0 <= capacity <= MAX_CAPACITY:
        raise StaffError(f"Capacity must be between 0 and {MAX_CAPACITY} chats.")
    return capacity


# ------------------------------------------------------------------------------ passwords


def hash_password(password: str) -> str:
    return password_hasher.hash(check_password(password))


_dummy: tuple[PasswordHasher, str] | None = None


def _dummy_hash() -> str:
    """A hash made with the current parameters, verified when the e-mail is unknown."""
    global _dummy
    if _dummy is None or _dummy[0] is not password_hasher:
        _dummy = (password_hasher, password_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# ------------------------------------------------------------------------------ users


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str | None = None,
    role: str = StaffRole.STAFF,
    capacity: int = 3,
    actor: StaffUser | None = None,
) -> StaffUser:
    """A new active account, or StaffError (bad input) / UserExists."""
    email = normalize_email(email)
    name, checked_role = _check_name(display_name, email), check_role(role)
    check_password(password)
    _check_capacity(capacity)
    if get_user_by_email(session, email) is not None:
        raise UserExists(email)
    user = StaffUser(
        email=email,
        display_name=name,
        role=checked_role.value,
        password_hash=hash_password(password),
        capacity=capacity,
        active=True,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        # Two creations of one address raced; the unique index settles it.
        raise UserExists(email) from None
    record_audit(
        session,
        actor,
        "staff.created",
        target=email,
        detail={"user_id": user.id, "role": user.role},
    )
    return user


def get_user(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


def get_user_by_email(session: Session, email: str) -> StaffUser | None:
    return session.scalars(
        select(StaffUser).where(StaffUser.email == email.strip().lower())
    ).one_or_none()


def require_user_by_email(session: Session, email: str) -> StaffUser:
    user = get_user_by_email(session, email)
    if user is None:
        raise UserNotFound(email.strip().lower())
    return user


def list_users(session: Session, *, include_inactive: bool = True) -> list[StaffUser]:
    owners_first = case((StaffUser.role == StaffRole.OWNER.value, 0), else_=1)
    query = select(StaffUser).order_by(owners_first, StaffUser.email)
    if not include_inactive:
        query = query.where(StaffUser.active.is_(True))
    return list(session.scalars(query))


def deactivate_user(session: Session, user: StaffUser, *, actor: StaffUser | None) -> None:
    """Lock the account and log it out everywhere; the last active owner cannot go."""
    if not user.active:
        return
    if user.role == StaffRole.OWNER:
        owners = session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(StaffUser.role == StaffRole.OWNER.value, StaffUser.active.is_(True))
        )
        if (owners or 0) <= 1:
            raise StaffError("This is the last active owner; create another owner first.")
    user.active = False
    ended = end_all_sessions(session, user)
    record_audit(
        session,
        actor,
        "staff.deactivated",
        target=user.email,
        detail={"user_id": user.id, "sessions_ended": ended},
    )


def reset_password(
    session: Session, user: StaffUser, new_password: str, *, actor: StaffUser | None
) -> None:
    """Set a new password and end every session, so a stolen cookie stops working."""
    user.password_hash = hash_password(new_password)
    ended = end_all_sessions(session, user)
    record_audit(
        session,
        actor,
        "staff.password_reset",
        target=user.email,
        detail={"user_id": user.id, "sessions_ended": ended},
    )


def authenticate(
    session: Session, email: str, password: str, *, now: datetime | None = None
) -> StaffUser:
    """The active user with these credentials, or AuthError.

    Unknown addresses still cost one verification (against a dummy hash), so response
    time does not reveal which e-mails have accounts.
    """
    if not password or len(password) > MAX_PASSWORD_CHARS:
        raise AuthError()
    user = get_user_by_email(session, email) if len(email) <= MAX_EMAIL_CHARS else None
    if user is None:
        _verify(_dummy_hash(), password)
        raise AuthError()
    if not _verify(user.password_hash, password) or not user.active:
        raise AuthError()
    if password_hasher.check_needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made; upgrade while we hold the password.
        user.password_hash = password_hasher.hash(password)
    user.last_login_at = now or utcnow()
    return user


# ------------------------------------------------------------------------------ sessions


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_expiry(created_at: datetime, now: datetime, settings: Settings) -> datetime:
    idle = now + timedelta(hours=settings.staff_session_hours)
    absolute = created_at + timedelta(days=settings.staff_session_max_days)
    return min(idle, absolute)


def start_session(
    session: Session,
    user: StaffUser,
    *,
    user_agent: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> NewSession:
    """A new login for `user`; the raw token is returned here once and never stored."""
    settings = settings or get_settings()
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    record = StaffSession(
        id=token_hash(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=_session_expiry(now, now, settings),
        user_agent=user_agent[:300] if user_agent else None,
        csrf_token=secrets.token_urlsafe(32),
    )
    session.add(record)
    session.flush()
    return NewSession(
        token=token, csrf_token=record.csrf_token, expires_at=record.expires_at, record=record
    )


def resolve_session(
    session: Session,
    token: str | None,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> StaffSession | None:
    """The live session for a cookie value (user loaded), or None.

    Each use slides the idle expiry forward, never past created_at + staff_session_max_days.
    Expired sessions are deleted on sight; a deactivated user's sessions resolve to None.
    """
    if not token or len(token) > 200:
        return None
    settings = settings or get_settings()
    now = now or utcnow()
    record = session.scalars(
        select(StaffSession)
        .where(StaffSession.id == token_hash(token))
        .options(selectinload(StaffSession.user))
    ).one_or_none()
    if record is None:
        return None
    if record.expires_at <= now:
        session.delete(record)
        return None
    if not record.user.active:
        return None
    if now - record.last_seen_at >= SESSION_TOUCH_INTERVAL:
        record.last_seen_at = now
        record.expires_at = _session_expiry(record.created_at, now, settings)
    return record


def end_session(session: Session, token: str | None) -> bool:
    """Log out one session; True when there was one."""
    if not token:
        return False
    result = session.execute(delete(StaffSession).where(StaffSession.id == token_hash(token)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_all_sessions(session: Session, user: StaffUser) -> int:
    """Log the user out everywhere; returns how many sessions ended."""
    result = session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    # Drop the now-stale objects from the identity map and the user's collection.
    session.expire(user, ["sessions"])
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_expired_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Housekeeping: delete sessions past their expiry; returns how many."""
    result = session.execute(
        delete(StaffSession).where(StaffSession.expires_at <= (now or utcnow()))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ audit


def record_audit(
    session: Session,
    actor: StaffUser | int | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """One audit row; `actor` None means the command line or the system."""
    actor_id = actor.id if isinstance(actor, StaffUser) else actor
    entry = AuditLog(actor_user_id=actor_id, action=action, target=target, detail=detail)
    session.add(entry)
    session.flush()
    return entry


def list_audit(session: Session, *, limit: int = 100) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(max(1, limit))))
