"""The customer API over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.abuse import check_message, check_new_conversation
from bot.clients import client_address
from bot.customer_auth import CustomerConversation, issue_token
from bot.edge import MAX_ID
from bot.schemas import Csat, CustomerMessage, MessageRejected, NewConversation, checked_text
from handoff.identity import IdentityError, verify_identity
from tandem.abuse.service import client_key, client_tag
from tandem.business.models import Customer
from tandem.business.profile import get_profile
from tandem.conversations import service
from tandem.conversations.flow import ChatFlows
from tandem.conversations.states import State
from tandem.db import session_scope

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


@router.post(
    "/conversations",
    status_code=201,
    responses={
        401: {"description": "forged or expired identity"},
        422: {},
        429: {"description": "too many new conversations from this address"},
    },
)
async def create_conversation(request: Request, body: NewConversation | None = None) -> Any:
    """Start a conversation; a signed identity (all three fields) marks the customer verified.

    Identity fields are never trusted unsigned: a bad signature or an expired one is 401,
    a malformed or partial one, or an unknown customer, 422.

    The answer carries `token`, the conversation's secret: every later call about it sends
    it in the X-Conversation-Token header (the WebSocket in its first frame).
    """
    await check_new_conversation(request)
    body = body or NewConversation()
    fields = (body.customer_id, body.expires_at, body.signature)
    if all(value is None for value in fields):
        return await _with_token(request, await _flows(request).start_conversation(body.channel))
    if any(value is None for value in fields):
        return JSONResponse(
            {"detail": "A signed identity needs customer_id, expires_at and signature together."},
            status_code=422,
        )
    try:
        identity = verify_identity(
            str(body.customer_id),
            body.expires_at,  # type: ignore[arg-type]
            str(body.signature),
            request.app.state.settings.identity_secret,
        )
    except IdentityError as error:
        status = 422 if str(error).startswith("malformed") else 401
        return JSONResponse({"detail": f"Identity not accepted: {error}."}, status_code=status)
    customer_id = await run_in_threadpool(_known_customer, request, identity.customer_id)
    if customer_id is None:
        return JSONResponse(
            {"detail": f"Identity not accepted: no customer with id {identity.customer_id}."},
            status_code=422,
        )
    return await _with_token(
        request,
        await _flows(request).start_conversation(
            body.channel, customer_id=customer_id, verified_via="signed_identity"
        ),
    )


async def _with_token(request: Request, conversation: dict[str, Any]) -> dict[str, Any]:
    """The new conversation with its capability token (shown once; only its hash is kept)."""
    settings = request.app.state.settings
    tag = client_tag(client_key(client_address(request)), settings.identity_secret)
    token = await run_in_threadpool(
        issue_token, request.app.state.engine, conversation["id"], tag
    )
    return conversation | {"token": token}


def _known_customer(request: Request, customer_id: str) -> int | None:
    if not customer_id.isdigit():
        return None
    with session_scope(request.app.state.engine) as session:
        customer = session.get(Customer, int(customer_id))
        return customer.id if customer is not None else None


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    request: Request, conversation_id: CustomerConversation
) -> dict[str, Any]:
    return await _flows(request).conversation(conversation_id)


@router.get("/conversations/{conversation_id}/messages")
async def get_messages(
    request: Request,
    conversation_id: CustomerConversation,
    after: int = Query(default=0, ge=0, le=MAX_ID),
) -> dict[str, Any]:
    return {"messages": await _flows(request).history(conversation_id, after_id=after)}


@router.post("/conversations/{conversation_id}/messages", responses={429: {}})
async def post_message(
    request: Request, conversation_id: CustomerConversation, body: CustomerMessage
) -> Any:
    await check_message(request, conversation_id)
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


@router.post("/conversations/{conversation_id}/csat", responses={409: {}})
async def post_csat(request: Request, conversation_id: CustomerConversation, body: Csat) -> Any:
    """The customer's rating (1-5) of a closed conversation, with an optional comment."""

    def store() -> dict[str, Any] | None:
        with session_scope(request.app.state.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            if conversation.state != State.CLOSED:
                return None
            comment = (body.comment or "").strip() or None
            conversation.csat = body.score
            conversation.csat_comment = comment
            service.record_event(
                session,
                conversation,
                kind="csat",
                actor="customer",
                reason=f"rated {body.score}/5",
                data={"score": body.score, "comment": comment},
            )
            return {"conversation_id": conversation.id, "csat": body.score, "comment": comment}

    result = await run_in_threadpool(store)
    if result is None:
        return JSONResponse({"detail": "Only a closed conversation can be rated."}, status_code=409)
    return result
