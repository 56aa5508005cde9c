"""The staff WebSocket `/ws/staff`: live escalations, queue changes and customer messages.

Authenticated by the staff session cookie (browsers send it with the upgrade request;
SameSite=Lax keeps other sites' pages from opening it with the cookie). A member sees
every queue event, and the messages of conversations assigned to them or still waiting;
the owner sees all messages.

Client -> server: {"type": "ping"} (also refreshes presence), {"type": "heartbeat"}
Server -> client: the `staff` bus events (see tandem/desk/), {"type": "pong"}

A session that ends (logout, deactivation, password reset: `end_staff_sockets`, in every
gateway process through the bus) closes its sockets at once with an error frame and code
4401; every STAFF_WS_RECHECK_SECONDS the socket also looks its session up again (an
expiry, or a change made from the command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from bot.auth import SESSION_COOKIE, CurrentStaff
from bot.origins import CLOSE_FORBIDDEN_ORIGIN, same_site
from bot.staff_privacy import event_for
from tandem.conversations.effects import STAFF_TOPIC
from tandem.db import session_scope
from tandem.desk import HandoffDesk
from tandem.staff import service

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
SESSION_ENDED = "session_ended"  # internal bus event: never sent to a client
_PER_CONVERSATION = frozenset({"customer_message", "staff_message", "note"})


def _resolve(websocket: WebSocket) -> CurrentStaff | None:
    token = websocket.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with session_scope(websocket.app.state.engine) as db:
        record = service.resolve_session(db, token, settings=websocket.app.state.settings)
        return CurrentStaff.from_session(record) if record is not None else None


def visible(staff: CurrentStaff, event: dict[str, Any]) -> bool:
    if event.get("type") not in _PER_CONVERSATION or staff.is_owner:
        return True
    assigned = event.get("assigned_staff_id")
    return assigned is None or assigned == staff.id


async def end_staff_sockets(
    app: FastAPI | Starlette, staff_id: int, session_id: str | None = None
) -> None:
    """Close the account's open staff sockets in every gateway process (through the bus).

    `session_id` (sha256 of the cookie) closes one login's sockets (logout); None closes
    all of the account's (deactivation, password reset).
    """
    desk: HandoffDesk = app.state.desk
    event = {"type": SESSION_ENDED, "staff_id": staff_id, "session_id": session_id}
    await desk.publisher.to_staff(event)


def _ends(staff: CurrentStaff, event: dict[str, Any]) -> bool:
    return event.get("staff_id") == staff.id and event.get("session_id") in (
        None,
        staff.session_id,
    )


@router.websocket("/ws/staff")
async def staff_socket(websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin")
    if origin and not same_site(origin, websocket):
        # Only the console's own pages may open the staff socket (cross-site hijacking).
        await websocket.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    staff = await run_in_threadpool(_resolve, websocket)
    await websocket.accept()
    if staff is None:
        await websocket.send_json({"type": "error", "status": 401, "detail": "Log in first."})
        await websocket.close(code=CLOSE_UNAUTHENTICATED)
        return
    desk: HandoffDesk = websocket.app.state.desk
    async with desk.publisher.bus.subscribe(STAFF_TOPIC) as events:
        await websocket.send_json({"type": "ready", "staff_id": staff.id})
        # Whichever ends first: the client leaves, or the session does (an event from an
        # owner action or a logout, or the periodic re-check).
        tasks = {
            asyncio.create_task(_receive(websocket, desk, staff)),
            asyncio.create_task(_push(websocket, events, staff)),
            asyncio.create_task(_recheck(websocket)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if any(not t.cancelled() and t.exception() is None and t.result() for t in done):
            with contextlib.suppress(Exception):
                await websocket.send_json(
                    {"type": "error", "status": 401, "detail": "Your session ended; log in again."}
                )
                await websocket.close(code=CLOSE_UNAUTHENTICATED)


async def _receive(websocket: WebSocket, desk: HandoffDesk, staff: CurrentStaff) -> bool:
    """Answer pings until the client leaves (returns False: not a session end)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return False
        try:
            frame = json.loads(message.get("text") or "")  # a binary frame is not a ping
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or frame.get("type") not in ("ping", "heartbeat"):
            await websocket.send_json(
                {"type": "error", "status": 422, "detail": 'Send {"type": "ping"}.'}
            )
            continue
        alive = await desk.queue.heartbeat(str(staff.id))
        await websocket.send_json({"type": "pong", "presence_alive": alive})


async def _recheck(websocket: WebSocket) -> bool:
    """Look the session up again every so often; True once it is gone."""
    every = websocket.app.state.settings.staff_ws_recheck_seconds
    while True:
        await asyncio.sleep(every)
        if await run_in_threadpool(_resolve, websocket) is None:
            return True


async def _push(
    websocket: WebSocket, events: asyncio.Queue[dict[str, Any]], staff: CurrentStaff
) -> bool:
    """Forward the events this member may see; True when their session ended."""
    while True:
        event = await events.get()
        if event.get("type") == SESSION_ENDED:
            if _ends(staff, event):
                return True
            continue
        if visible(staff, event):
            await websocket.send_json(await run_in_threadpool(event_for, staff, event))
