"""The customer's credential: a conversation's capability token, beside its id.

Creating a conversation returns `token` once; the database keeps only its sha256. The
HTTP customer API wants it in the `X-Conversation-Token` header (never in the URL, so it
stays out of access logs and browser history); the chat WebSocket wants it in its first
frame, `{"type": "auth", "token": "..."}` (browsers cannot set headers on a WebSocket,
and a query parameter would be logged). An unknown id and a wrong token get the same 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from tandem.conversations import service
from tandem.conversations.service import ConversationNotFound
from tandem.db import session_scope

TOKEN_HEADER = "X-Conversation-Token"
MAX_TOKEN_CHARS = 128


def token_ok(engine: Engine, conversation_id: str, token: str) -> bool:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    with session_scope(engine) as session:
        try:
            service.get_with_token(session, conversation_id, token)
        except ConversationNotFound:
            return False
    return True


def issue_token(engine: Engine, conversation_id: str, client_tag: str | None = None) -> str:
    """The new conversation's token; also keeps the tag of the client that started it."""
    with session_scope(engine) as session:
        conversation = service.get_conversation(session, conversation_id, lock=True)
        conversation.client_tag = client_tag
        return service.issue_token(conversation)


async def customer_conversation(
    request: Request,
    conversation_id: Annotated[str, Path(max_length=64)],
    x_conversation_token: Annotated[
        str | None,
        Header(
            max_length=MAX_TOKEN_CHARS,
            description="The token returned when the conversation was created.",
        ),
    ] = None,
) -> str:
    """The conversation id, once its token checks out (401 without one, 404 if wrong)."""
    if not x_conversation_token:
        raise HTTPException(
            status_code=401,
            detail=f"Send the conversation's token in the {TOKEN_HEADER} header.",
        )
    if not await run_in_threadpool(
        token_ok, request.app.state.engine, conversation_id, x_conversation_token
    ):
        raise ConversationNotFound(conversation_id)
    return conversation_id


CustomerConversation = Annotated[str, Depends(customer_conversation)]
