"""The customer API over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bot.flows import ChatFlows
from bot.schemas import CustomerMessage, MessageRejected, NewConversation, checked_text
from tandem.business.profile import get_profile

router = APIRouter(prefix="/api", tags=["customer"])


def _flows(request: Request) -> ChatFlows:
    return request.app.state.flows  # type: ignore[no-any-return]


@router.get("/business")
async def business() -> dict[str, Any]:
    """What a chat page shows before the first message: names and the bot disclosure."""
    profile = get_profile()
    return {
        "name": profile.business.name,
        "assistant_name": profile.bot.name,
        "disclosure": profile.say("chat_disclosure"),
        "talk_to_person": profile.say("talk_to_person_button"),
    }


@router.post("/conversations", status_code=201)
async def create_conversation(
    request: Request, body: NewConversation | None = None
) -> dict[str, Any]:
    return await _flows(request).start_conversation((body or NewConversation()).channel)


@router.get("/conversations/{conversation_id}")
async def get_conversation(request: Request, conversation_id: str) -> dict[str, Any]:
    return await _flows(request).conversation(conversation_id)


@router.get("/conversations/{conversation_id}/messages")
async def get_messages(
    request: Request, conversation_id: str, after: int = Query(default=0, ge=0)
) -> dict[str, Any]:
    return {"messages": await _flows(request).history(conversation_id, after_id=after)}


@router.post("/conversations/{conversation_id}/messages")
async def post_message(request: Request, conversation_id: str, body: CustomerMessage) -> Any:
    try:
        text = checked_text(body.text, request.app.state.settings.max_message_chars)
    except MessageRejected as rejected:
        return JSONResponse({"detail": rejected.detail}, status_code=rejected.status_code)
    result = await _flows(request).customer_message(
        conversation_id, text, body.client_message_id, body.payload
    )
    return {
        "message": result.message,
        "replies": result.replies,
        "conversation": result.conversation or None,
        "duplicate": result.duplicate,
    }
