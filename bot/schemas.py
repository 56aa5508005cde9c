"""Request bodies of the customer API and their checks."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from bot.edge import json_problem


class NewConversation(BaseModel):
    channel: str = Field(default="web", max_length=20, pattern=r"^[a-z_]+$")
    # A signed identity from the business's own backend (see handoff/identity.py): all
    # three together, or none.
    customer_id: str | int | None = Field(default=None, description="The customer's id.")
    expires_at: int | str | None = Field(default=None, description="Unix time, seconds.")
    signature: str | None = Field(
        default=None, max_length=128, description="hex HMAC-SHA256 of 'customer_id:expires_at'"
    )


class Csat(BaseModel):
    score: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: str | None = Field(default=None, max_length=2000)


class CustomerMessage(BaseModel):
    text: str = Field(description="What the customer wrote.")
    client_message_id: str | None = Field(
        default=None,
        max_length=64,
        description="Set by the widget; a message resent with the same id is stored once.",
    )
    payload: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^/[A-Za-z_]+(\{.*\})?$",
        description="A quick-reply button's payload, sent to the bot instead of the text.",
    )


# --- the chat WebSocket's frames: a message frame is the HTTP message body plus its type.


class AuthFrame(BaseModel):
    type: Literal["auth"]
    token: str = Field(max_length=128, description="The conversation's token.")


class PingFrame(BaseModel):
    type: Literal["ping"]


class MessageFrame(CustomerMessage):
    type: Literal["message"]


ChatFrame = Annotated[AuthFrame | PingFrame | MessageFrame, Field(discriminator="type")]
_chat_frame: TypeAdapter[AuthFrame | PingFrame | MessageFrame] = TypeAdapter(ChatFrame)


def parse_frame(raw: str | bytes | None) -> AuthFrame | PingFrame | MessageFrame:
    """One WebSocket frame, checked like an HTTP body; MessageRejected(422) says what's wrong."""
    if not isinstance(raw, str):
        raise MessageRejected(422, "Send text frames holding a JSON object, not binary data.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise MessageRejected(422, "Send a JSON object.")
    problem = json_problem(value)
    if problem is not None:
        raise MessageRejected(422, problem)
    try:
        return _chat_frame.validate_python(value)
    except ValidationError as error:
        raise MessageRejected(422, _explain(error)) from None


def _explain(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part not in _FRAME_TAGS)
    if first["type"] == "union_tag_invalid" or where == "":
        return 'Expected {"type": "message", "text": "..."} or {"type": "ping"}.'
    return f"{where}: {first['msg']}"


_FRAME_TAGS = frozenset({"auth", "ping", "message"})


class MessageRejected(ValueError):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def checked_text(text: str, max_chars: int) -> str:
    """The text to store, or MessageRejected with the status and a plain explanation."""
    stripped = text.strip()
    if not stripped:
        raise MessageRejected(422, "The message is empty. Please type something.")
    if len(stripped) > max_chars:
        raise MessageRejected(
            413,
            f"The message is {len(stripped)} characters long; the limit is {max_chars}. "
            "Please shorten it or send it in parts.",
        )
    return stripped
