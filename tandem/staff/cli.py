"""Manage staff accounts from the shell: `python -m tandem.staff <command>`.

Exit codes: 0 done, 1 the change was refused (the e-mail exists, no such account, the
last owner), 2 bad input (e-mail shape, password, mismatched passwords).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable

from sqlalchemy.orm import Session

from tandem.db import get_engine, migrate, session_scope
from tandem.staff import service
from tandem.staff.models import StaffRole

OWNER_PASSWORD_ENV = "TANDEM_OWNER_PASSWORD"
STAFF_PASSWORD_ENV = "TANDEM_STAFF_PASSWORD"

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _read_password(env_name: str, prompt: str = "Password") -> str:
    """From the environment (automation) or typed twice without echo."""
    from_env = os.environ.get(env_name)
    if from_env is not None:
        password = from_env
    else:
        try:
            password = getpass.getpass(f"{prompt}: ")
            again = getpass.getpass(f"{prompt} (again): ")
        except (EOFError, KeyboardInterrupt):
            raise CliError("No password given.", EXIT_BAD_INPUT) from None
        if password != again:
            raise CliError("The passwords do not match.", EXIT_BAD_INPUT)
    try:
        return service.check_password(password)
    except service.StaffError as error:
        raise CliError(error.message, EXIT_BAD_INPUT) from None


def _create(args: argparse.Namespace, session: Session, role: StaffRole) -> str:
    try:
        email = service.normalize_email(args.email)
    except service.StaffError as error:
        raise CliError(error.message, EXIT_BAD_INPUT) from None
    # Refuse before asking for a password nobody will use.
    if service.get_user_by_email(session, email) is not None:
        raise CliError(f"An account with the e-mail {email} already exists.", EXIT_REFUSED)
    env_name = OWNER_PASSWORD_ENV if role is StaffRole.OWNER else STAFF_PASSWORD_ENV
    password = _read_password(env_name)
    try:
        user = service.create_user(
            session,
            email=email,
            password=password,
            display_name=args.name,
            role=role,
            capacity=args.capacity,
            actor=None,
        )
    except service.UserExists as error:
        raise CliError(error.message, EXIT_REFUSED) from None
    except service.StaffError as error:
        raise CliError(error.message, EXIT_BAD_INPUT) from None
    return f"Created {role.value} {user.email} (id {user.id})."


def _find(session: Session, email: str) -> service.StaffUser:
    try:
        return service.require_user_by_email(session, email)
    except service.UserNotFound:
        raise CliError(
            f"No account with the e-mail {email.strip().lower()}.", EXIT_REFUSED
        ) from None


def _list(args: argparse.Namespace, session: Session) -> str:
    users = service.list_users(session, include_inactive=not args.active_only)
    if not users:
        return "No staff accounts yet. Create one with: python -m tandem.staff create-owner"
    header = (
        f"{'id':>4}  {'email':<32} {'name':<20} {'role':<6} {'active':<6} {'cap':>3}  last login"
    )
    lines = [header]
    for user in users:
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never"
        lines.append(
            f"{user.id:>4}  {user.email:<32} {user.display_name[:20]:<20} {user.role:<6} "
            f"{'yes' if user.active else 'no':<6} {user.capacity:>3}  {last}"
        )
    return "\n".join(lines)


def _deactivate(args: argparse.Namespace, session: Session) -> str:
    user = _find(session, args.email)
    if not user.active:
        return f"{user.email} was already deactivated."
    try:
        service.deactivate_user(session, user, actor=None)
    except service.StaffError as error:
        raise CliError(error.message, EXIT_REFUSED) from None
    return f"Deactivated {user.email}; their sessions have ended."


def _reset_password(args: argparse.Namespace, session: Session) -> str:
    user = _find(session, args.email)
    env_name = OWNER_PASSWORD_ENV if user.role == StaffRole.OWNER else STAFF_PASSWORD_ENV
    password = _read_password(env_name, prompt="New password")
    service.reset_password(session, user, password, actor=None)
    return f"Password of {user.email} changed; their sessions have ended."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.staff", description="Manage staff and owner accounts."
    )
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    for name, role in (("create-owner", StaffRole.OWNER), ("create-staff", StaffRole.STAFF)):
        env_name = OWNER_PASSWORD_ENV if role is StaffRole.OWNER else STAFF_PASSWORD_ENV
        create = commands.add_parser(
            name,
            help=f"add a{'n' if role is StaffRole.OWNER else ''} {role.value} account",
            description=f"The password is typed twice, or read from {env_name}.",
        )
        create.add_argument("--email", required=True)
        create.add_argument("--name", help="shown to customers; defaults to the e-mail's name")
        create.add_argument("--capacity", type=int, default=3, help="live chats at once")
        create.set_defaults(run=lambda a, s, role=role: _create(a, s, role))

    listing = commands.add_parser("list", help="show every account")
    listing.add_argument("--active-only", action="store_true")
    listing.set_defaults(run=_list)

    deactivate = commands.add_parser("deactivate", help="lock an account and end its sessions")
    deactivate.add_argument("--email", required=True)
    deactivate.set_defaults(run=_deactivate)

    reset = commands.add_parser(
        "reset-password",
        help="set a new password and end the account's sessions",
        description=f"The password is typed twice, or read from {OWNER_PASSWORD_ENV} "
        f"(owners) or {STAFF_PASSWORD_ENV} (staff).",
    )
    reset.add_argument("--email", required=True)
    reset.set_defaults(run=_reset_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Session], str] = args.run
    # A fresh install has no tables yet; the schema belongs to Alembic.
    migrate(args.database_url)
    try:
        with session_scope(get_engine(args.database_url)) as session:
            message = run(args, session)
    except CliError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.code
    print(message)
    return 0
