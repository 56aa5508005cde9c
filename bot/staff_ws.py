"""The staff WebSocket `/ws/staff`: live escalations, queue changes and customer messages.

Authenticated by the staff session cookie (browsers send it with the upgrade request;
SameSite=Lax keeps other sites' pages from opening it with the cookie). A member sees
every queue event, and the messages of conversations assigned to them or still waiting;
the owner sees all messages.

Client -> server: {"type": "ping"} (also refreshes presence), {"type": "heartbeat"}
Server -> client: the `staff` bus events (see tandem/desk/), {"type": "pong"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from bot.auth import SESSION_COOKIE, CurrentStaff
from bot.origins import CLOSE_FORBIDDEN_ORIGIN, same_site
from tandem.conversations.effects import STAFF_TOPIC
from tandem.db import session_scope
from tandem.desk import HandoffDesk
from tandem.staff import service

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
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
        pusher = asyncio.create_task(_push(websocket, events, staff))
        try:
            while True:
                raw = await websocket.receive_text()
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict) or frame.get("type") not in ("ping", "heartbeat"):
                    await websocket.send_json(
                        {"type": "error", "status": 422, "detail": 'Send {"type": "ping"}.'}
                    )
                    continue
                alive = await desk.queue.heartbeat(str(staff.id))
                await websocket.send_json({"type": "pong", "presence_alive": alive})
        except WebSocketDisconnect:
            pass
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher


async def _push(
    websocket: WebSocket, events: asyncio.Queue[dict[str, Any]], staff: CurrentStaff
) -> None:
    while True:
        event = await events.get()
        if visible(staff, event):
            await websocket.send_json(event)
