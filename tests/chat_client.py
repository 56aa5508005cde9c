"""Test helper: start a conversation as a customer and use its capability token.

Works with FastAPI's TestClient and with httpx.Client (same API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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
