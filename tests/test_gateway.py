"""The gateway's customer API: validation, storage before processing, Rasa failures.

Rasa is unreachable (a closed port) or slow (a real HTTP server that answers late)
here; conversations with the real Rasa server are in test_integration.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.app import create_app
from tandem.config import Settings
from tandem.conversations.flow import BOT_UNAVAILABLE_TEXT
from tandem.conversations.models import ConversationEvent, Message
from tandem.db import make_engine, migrate, session_scope
from tandem.run import free_port
from tests.chat_client import Chat, join, start_chat


def make_client(tmp_path: Path, rasa_url: str, timeout: float = 1.0) -> TestClient:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    # These tests are about the gateway and Rasa; sentiment (a model load that can take
    # seconds on a busy CPU) is tested in test_handoff_gateway.py and test_sentiment.py.
    settings = Settings(
        database_url=url, rasa_url=rasa_url, rasa_timeout_seconds=timeout, sentiment_enabled=False
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, f"http://127.0.0.1:{free_port()}") as test_client:
        yield test_client


@pytest.fixture
def chat(client: TestClient) -> Chat:
    return start_chat(client)


@pytest.fixture
def conversation_id(client: TestClient, chat: Chat) -> str:
    # Every later call of this client carries the conversation's token.
    client.headers.update(chat.headers)
    return chat.id


def stored_messages(client: TestClient) -> list[Message]:
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_empty_message_is_422_and_nothing_is_stored(
    client: TestClient, conversation_id: str
) -> None:
    for text in ["", "   ", "\n\t"]:
        response = client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert response.status_code == 422
        assert "empty" in response.json()["detail"]
    assert stored_messages(client) == []


def test_oversized_message_is_413_with_the_limit(client: TestClient, conversation_id: str) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "a" * 2001}
    )
    assert response.status_code == 413
    assert "2001" in response.json()["detail"] and "2000" in response.json()["detail"]
    assert stored_messages(client) == []


def test_huge_body_is_refused_before_parsing(client: TestClient, conversation_id: str) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/messages",
        content=b'{"text": "' + b"a" * 100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("body", [b"{not json", b'{"text": 5}', b"[]", b'{"txt": "hi"}'])
def test_malformed_json_is_422(client: TestClient, conversation_id: str, body: bytes) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/messages",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_unknown_conversation_is_404(client: TestClient) -> None:
    client.headers["X-Conversation-Token"] = "made-up"
    assert client.get("/api/conversations/nope").status_code == 404
    assert client.get("/api/conversations/nope/messages").status_code == 404
    response = client.post("/api/conversations/nope/messages", json={"text": "hello"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown conversation."}


def test_rasa_down_stores_the_message_and_answers_politely(
    client: TestClient, conversation_id: str
) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "where is my order?"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"]["text"] == "where is my order?"
    assert [r["text"] for r in body["replies"]] == [BOT_UNAVAILABLE_TEXT]
    assert body["replies"][0]["buttons"][0]["payload"] == "/request_human"
    messages = stored_messages(client)
    assert [(m.sender, m.status) for m in messages] == [
        ("customer", "bot_unavailable"),
        ("system", "received"),
    ]
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        kinds = session.scalars(select(ConversationEvent.kind)).all()
        assert "bot_unavailable" in kinds
    # The gateway stays up and keeps serving.
    history = client.get(f"/api/conversations/{conversation_id}/messages").json()["messages"]
    assert [m["sender"] for m in history] == ["customer", "system"]
    assert client.get("/healthz").json()["rasa"] == "down"


class SlowRasa:
    """A real HTTP server on loopback that answers after the gateway's timeout."""

    def __init__(self, delay: float) -> None:
        async def webhook(_: Request) -> JSONResponse:
            await asyncio.sleep(delay)
            return JSONResponse({"messages": [], "parse_data": {}})

        app = Starlette(routes=[Route("/webhooks/tandem/webhook", webhook, methods=["POST"])])
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> SlowRasa:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_rasa_timeout_is_a_polite_reply_not_an_error(tmp_path: Path) -> None:
    with (
        SlowRasa(delay=3.0) as slow,
        make_client(tmp_path, f"http://127.0.0.1:{slow.port}", timeout=0.5) as client,
    ):
        chat = start_chat(client)
        client.headers.update(chat.headers)
        conversation_id = chat.id
        started = time.monotonic()
        response = client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": "hello?"}
        )
        assert time.monotonic() - started < 2.5
        assert response.status_code == 200
        assert response.json()["replies"][0]["text"] == BOT_UNAVAILABLE_TEXT
        assert stored_messages(client)[0].text == "hello?"


def test_resent_client_message_is_stored_once(client: TestClient, conversation_id: str) -> None:
    url = f"/api/conversations/{conversation_id}/messages"
    first = client.post(url, json={"text": "hi", "client_message_id": "abc"}).json()
    again = client.post(url, json={"text": "hi", "client_message_id": "abc"}).json()
    assert again["duplicate"] is True
    assert again["message"]["id"] == first["message"]["id"]
    assert [m.text for m in stored_messages(client) if m.sender == "customer"] == ["hi"]


def test_button_payload_must_be_an_intent(client: TestClient, conversation_id: str) -> None:
    url = f"/api/conversations/{conversation_id}/messages"
    bad = client.post(url, json={"text": "Yes", "payload": "affirm; drop table"})
    assert bad.status_code == 422
    ok = client.post(url, json={"text": "Yes", "payload": "/affirm"})
    assert ok.status_code == 200
    assert ok.json()["message"]["text"] == "Yes"


def test_websocket_rejects_bad_frames_and_unknown_conversations(
    client: TestClient, chat: Chat
) -> None:
    with client.websocket_connect("/ws/chat/unknown") as socket:
        socket.send_json(chat.auth_frame)
        assert socket.receive_json()["status"] == 404
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        join(socket, chat)
        socket.send_text("not json")
        assert socket.receive_json() == {
            "type": "error",
            "status": 422,
            "detail": "Send a JSON object.",
        }
        socket.send_json({"type": "message", "text": "  "})
        assert socket.receive_json()["status"] == 422
        socket.send_json({"type": "message", "text": "x" * 2001})
        assert socket.receive_json()["status"] == 413
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
    assert stored_messages(client) == []


def test_websocket_message_is_stored_and_pushed(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        join(socket, chat)
        socket.send_json({"type": "message", "text": "hello there", "client_message_id": "w1"})
        frames = [socket.receive_json() for _ in range(4)]
    kinds = [f["type"] for f in frames]
    assert kinds == ["message", "typing", "typing", "message"]
    assert frames[0]["message"]["text"] == "hello there"
    assert frames[3]["message"]["text"] == BOT_UNAVAILABLE_TEXT
    assert [m.text for m in stored_messages(client)] == ["hello there", BOT_UNAVAILABLE_TEXT]


def test_page_and_openapi_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text
    assert (
        "/api/conversations/{conversation_id}/messages"
        in client.get("/openapi.json").json()["paths"]
    )


def test_engine_is_file_backed(tmp_path: Path) -> None:
    # A path with a missing folder is created, so a fresh clone needs no manual step.
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}"
    migrate(url)
    assert (tmp_path / "new" / "dir" / "x.db").exists()
    make_engine(url).dispose()


def test_business_endpoint_discloses_the_bot(client: TestClient) -> None:
    from tandem.business.profile import get_profile

    body = client.get("/api/business").json()
    assert body["name"] == get_profile().business.name
    assert "virtual assistant" in body["disclosure"]
