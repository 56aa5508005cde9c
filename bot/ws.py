"""The customer WebSocket: live replies, typing, and messages sent over the socket.

The first frame must prove the customer holds the conversation (see bot/customer_auth.py):
Client -> server: {"type": "auth", "token": "..."}             (first, within 10 s)
                  {"type": "message", "text": "...", "client_message_id": "...",
                   "payload": "/intent"}                     (the HTTP message body + type)
                  {"type": "ping"}
Server -> client: {"type": "ready"} after the auth frame,
                  {"type": "message", "message": {...}}, {"type": "typing", ...},
                  {"type": "error", "status": 422, "detail": "..."}, {"type": "pong"}

Frames are checked by the same schema as the HTTP body (bot/schemas.py); a bad or binary
frame gets an error frame and the socket stays open. Frames per connection and messages
(per conversation and client address, shared with HTTP) are limited: over a limit, an
error frame with status 429 and `retry_after` seconds, and the frame is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from bot.abuse import check_frame, check_message
from bot.customer_auth import token_ok
from bot.origins import CLOSE_FORBIDDEN_ORIGIN, origin_allowed
from bot.schemas import AuthFrame, MessageFrame, MessageRejected, checked_text, parse_frame
from tandem.abuse.service import RateLimited
from tandem.bus import conversation_topic
from tandem.conversations.flow import ChatFlows

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_CONVERSATION = 4404
AUTH_TIMEOUT_SECONDS = 10.0


async def _receive_raw(websocket: WebSocket) -> str | bytes | None:
    """The next frame's data (text or bytes); WebSocketDisconnect when the client left."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message.get("text") if message.get("text") is not None else message.get("bytes")


async def _error(websocket: WebSocket, status: int, detail: str, **extra: Any) -> None:
    await websocket.send_json({"type": "error", "status": status, "detail": detail, **extra})


async def _authenticate(websocket: WebSocket, conversation_id: str) -> bool:
    """Wait for the auth frame; False (after an error frame and a close) when it fails."""
    try:
        raw = await asyncio.wait_for(_receive_raw(websocket), AUTH_TIMEOUT_SECONDS)
        frame = parse_frame(raw)
    except (TimeoutError, MessageRejected):
        frame = None
    if not isinstance(frame, AuthFrame):
        await _error(websocket, 401, 'Send {"type": "auth", "token": "..."} first.')
        await websocket.close(code=CLOSE_UNAUTHENTICATED)
        return False
    engine = websocket.app.state.engine
    if not await run_in_threadpool(token_ok, engine, conversation_id, frame.token):
        await _error(websocket, 404, "Unknown conversation.")
        await websocket.close(code=CLOSE_UNKNOWN_CONVERSATION)
        return False
    await websocket.send_json({"type": "ready"})
    return True


@router.websocket("/ws/chat/{conversation_id}")
async def chat_socket(websocket: WebSocket, conversation_id: str) -> None:
    flows: ChatFlows = websocket.app.state.flows
    max_chars: int = websocket.app.state.settings.max_message_chars
    if not origin_allowed(websocket, websocket.app.state.settings):
        # Another site's page: refuse before accepting (the browser sees a failed upgrade).
        await websocket.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    await websocket.accept()
    try:
        if not await _authenticate(websocket, conversation_id):
            return
    except WebSocketDisconnect:
        return

    socket_id = uuid.uuid4().hex  # frames are counted per connection
    async with flows.bus.subscribe(conversation_topic(conversation_id)) as events:
        pusher = asyncio.create_task(_push(websocket, events))
        try:
            while True:
                await _receive_one(websocket, flows, conversation_id, max_chars, socket_id)
        except WebSocketDisconnect:
            pass
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher


async def _push(websocket: WebSocket, events: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await websocket.send_json(await events.get())


async def _receive_one(
    websocket: WebSocket, flows: ChatFlows, conversation_id: str, max_chars: int, socket_id: str
) -> None:
    raw = await _receive_raw(websocket)
    try:
        await check_frame(websocket, socket_id)
        frame = parse_frame(raw)
        if isinstance(frame, MessageFrame):
            await check_message(websocket, conversation_id)
    except RateLimited as limited:
        await _error(websocket, 429, limited.detail, retry_after=limited.retry_after)
        return
    except MessageRejected as rejected:
        await _error(websocket, rejected.status_code, rejected.detail)
        return
    if isinstance(frame, AuthFrame):
        await websocket.send_json({"type": "ready"})
        return
    if not isinstance(frame, MessageFrame):
        await websocket.send_json({"type": "pong"})
        return
    client_id = frame.client_message_id
    try:
        text = checked_text(frame.text, max_chars)
    except MessageRejected as rejected:
        await _error(
            websocket, rejected.status_code, rejected.detail, client_message_id=client_id
        )
        return
    # Replies reach this socket (and any other on the conversation) through the bus.
    result = await flows.customer_message(conversation_id, text, client_id, frame.payload)
    if result.duplicate:
        await websocket.send_json({"type": "ack", "message": result.message, "duplicate": True})
