"""The team as the console's transfer picker sees it: active accounts with live presence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from handoff.queue import HandoffQueue
from tandem.db import session_scope
from tandem.staff import service


def _accounts(engine: Engine) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        return [
            {
                "id": user.id,
                "display_name": user.display_name,
                "role": user.role,
                "capacity": user.capacity,
            }
            for user in service.list_users(session, include_inactive=False)
        ]


async def team_view(engine: Engine, queue: HandoffQueue) -> list[dict[str, Any]]:
    """Active staff and owners: presence online|away|offline, current load and capacity."""
    team = []
    for account in await run_in_threadpool(_accounts, engine):
        presence = await queue.presence(str(account["id"]))
        live = presence.state != "offline"
        team.append(
            account
            | {
                "presence": presence.state,
                "load": presence.load,
                # While present, the capacity they chose for this shift; else their default.
                "capacity": presence.capacity if live else account["capacity"],
            }
        )
    return team
