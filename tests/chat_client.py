"""Test helper: start a conversation as a customer and use its capability token.

Works with FastAPI's TestClient and with httpx.Client (same API).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import httpx2  # what Starlette's TestClient is built on

from bot.customer_auth import TOKEN_HEADER


class _Client(Protocol):
    def post(self, url: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Chat:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self.token}

    @property
    def url(self) -> str:
        return f"/api/conversations/{self.id}"

    @property
    def auth_frame(self) -> dict[str, str]:
        return {"type": "auth", "token": self.token}


def start_chat(client: _Client, body: dict[str, Any] | None = None, **kwargs: Any) -> Chat:
    """POST /api/conversations (with `body`, e.g. a signed identity); the id and token."""
    response = client.post("/api/conversations", json=body, **kwargs)
    assert response.status_code == 201, response.text
    data = response.json()
    return Chat(str(data["id"]), str(data["token"]))


def join(socket: Any, chat: Chat) -> None:
    """Authenticate a TestClient chat WebSocket (the auth frame, then "ready")."""
    socket.send_json(chat.auth_frame)
    assert socket.receive_json() == {"type": "ready"}


class WidgetTokens(httpx.Auth, httpx2.Auth):
    """Keeps each conversation's token, as the widget does, and sends it on every call.

    With `client.auth = WidgetTokens()` (a TestClient or an httpx client), tests about other
    things use the customer API by id: the token of a conversation this client created goes
    with each call about it.
    """

    requires_response_body = True

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def auth_frame(self, conversation_id: str) -> dict[str, str]:
        return {"type": "auth", "token": self.tokens[conversation_id]}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        match = _CONVERSATION_PATH.match(request.url.path)
        if match and match.group(1) in self.tokens and TOKEN_HEADER not in request.headers:
            request.headers[TOKEN_HEADER] = self.tokens[match.group(1)]
        response = yield request
        created = request.method == "POST" and request.url.path == "/api/conversations"
        if created and response.status_code == 201:
            body = response.json()
            self.tokens[str(body["id"])] = str(body["token"])


_CONVERSATION_PATH = re.compile(r"^/api/conversations/([^/]+)")
