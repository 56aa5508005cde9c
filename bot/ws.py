"""The customer WebSocket: live replies, typing, and messages sent over the socket.

Client -> server: {"type": "message", "text": "...", "client_message_id": "..."}
                  {"type": "ping"}
Server -> client: {"type": "message", "message": {...}}, {"type": "typing", ...},
                  {"type": "error", "status": 422, "detail": "..."}, {"type": "pong"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from bot.origins import CLOSE_FORBIDDEN_ORIGIN, origin_allowed
from bot.schemas import MessageRejected, checked_text
from tandem.bus import conversation_topic
from tandem.conversations.flow import ChatFlows
from tandem.conversations.service import ConversationNotFound

router = APIRouter()

CLOSE_UNKNOWN_CONVERSATION = 4404


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
        await flows.conversation(conversation_id)
    except ConversationNotFound:
        await websocket.send_json(
            {"type": "error", "status": 404, "detail": "Unknown conversation."}
        )
        await websocket.close(code=CLOSE_UNKNOWN_CONVERSATION)
        return

    async with flows.bus.subscribe(conversation_topic(conversation_id)) as events:
        pusher = asyncio.create_task(_push(websocket, events))
        try:
            while True:
                await _receive_one(websocket, flows, conversation_id, max_chars)
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
    websocket: WebSocket, flows: ChatFlows, conversation_id: str, max_chars: int
) -> None:
    raw = await websocket.receive_text()
    try:
        frame = json.loads(raw)
        if not isinstance(frame, dict):
            raise ValueError("not an object")
    except ValueError:
        await websocket.send_json({"type": "error", "status": 422, "detail": "Send a JSON object."})
        return
    if frame.get("type") == "ping":
        await websocket.send_json({"type": "pong"})
        return
    if frame.get("type") != "message" or not isinstance(frame.get("text"), str):
        await websocket.send_json(
            {
                "type": "error",
                "status": 422,
                "detail": 'Expected {"type": "message", "text": "..."}.',
            }
        )
        return
    client_id = frame.get("client_message_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
        await websocket.send_json(
            {
                "type": "error",
                "status": 422,
                "detail": "client_message_id must be a string of at most 64 characters.",
            }
        )
        return
    payload = frame.get("payload")
    if payload is not None and not (isinstance(payload, str) and payload.startswith("/")):
        await websocket.send_json(
            {"type": "error", "status": 422, "detail": 'payload must look like "/intent".'}
        )
        return
    try:
        text = checked_text(frame["text"], max_chars)
    except MessageRejected as rejected:
        await websocket.send_json(
            {
                "type": "error",
                "status": rejected.status_code,
                "detail": rejected.detail,
                "client_message_id": client_id,
            }
        )
        return
    # Replies reach this socket (and any other on the conversation) through the bus.
    result = await flows.customer_message(conversation_id, text, client_id, payload)
    if result.duplicate:
        await websocket.send_json({"type": "ack", "message": result.message, "duplicate": True})
