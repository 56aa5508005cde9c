"""Regression tests for the customer side of issue 12: conversation tokens (finding 4/10),
edge input that used to give a 500 or drop the socket (findings 7 and 8), ids in logs.

Also the abuse limits (finding 4). Rasa is a closed port here (replies are the polite
"bot unavailable" message).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from bot.app import create_app
from bot.customer_auth import TOKEN_HEADER
from bot.logredact import RedactConversationIds, tag
from tandem.abuse.service import AbuseLimits, OrderLookupLimit
from tandem.config import Settings
from tandem.conversations.models import Conversation, Message
from tandem.db import migrate, session_scope
from tandem.run import free_port
from tests.chat_client import Chat, join, start_chat
from tests.handoff_fixtures import REDIS_URL, delete_prefix, redis_client


@contextmanager
def gateway(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    migrate(url)
    settings = Settings(
        database_url=url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        rasa_timeout_seconds=1.0,
        sentiment_enabled=False,
        **overrides,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with gateway(tmp_path) as test_client:
        yield test_client


@pytest.fixture
def chat(client: TestClient) -> Chat:
    return start_chat(client)


def customer_texts(client: TestClient) -> list[str]:
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(Message.text).where(Message.sender == "customer")))


# ------------------------------------------------------------------ the capability token


def test_the_id_alone_no_longer_opens_a_conversation(client: TestClient, chat: Chat) -> None:
    assert len(chat.token) >= 40
    other = start_chat(client)
    for method, path, body in [
        ("GET", chat.url, None),
        ("GET", chat.url + "/messages", None),
        ("POST", chat.url + "/messages", {"text": "hello"}),
        ("POST", chat.url + "/csat", {"score": 5}),
    ]:
        bare = client.request(method, path, json=body)
        assert bare.status_code == 401, path
        assert TOKEN_HEADER in bare.json()["detail"]
        for wrong in ("x" * 43, other.token):
            response = client.request(method, path, json=body, headers={TOKEN_HEADER: wrong})
            assert response.status_code == 404, path
            assert response.json() == {"detail": "Unknown conversation."}
    assert customer_texts(client) == []
    assert client.get(chat.url, headers=chat.headers).json()["id"] == chat.id


def test_only_the_token_hash_is_stored(client: TestClient, chat: Chat) -> None:
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        stored = session.get_one(Conversation, chat.id).token_hash
    assert stored is not None and chat.token not in stored and len(stored) == 64


def test_websocket_needs_the_token_in_its_first_frame(client: TestClient, chat: Chat) -> None:
    other = start_chat(client)
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        socket.send_json({"type": "message", "text": "let me in"})
        assert socket.receive_json()["status"] == 401
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 4401
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        socket.send_json(other.auth_frame)
        assert socket.receive_json() == {
            "type": "error",
            "status": 404,
            "detail": "Unknown conversation.",
        }
    assert customer_texts(client) == []
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        join(socket, chat)
        socket.send_json({"type": "message", "text": "now I'm in"})
        assert socket.receive_json()["message"]["text"] == "now I'm in"


def test_logs_carry_a_tag_instead_of_the_conversation_id(chat: Chat) -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", f"/ws/chat/{chat.id}"), None,
    )  # fmt: skip
    RedactConversationIds().filter(record)
    line = record.getMessage()
    assert chat.id not in line and tag(chat.id) in line


def test_the_gateway_logger_is_redacted(
    client: TestClient, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tandem.conversations.flow"):
        client.post(chat.url + "/messages", json={"text": "hi"}, headers=chat.headers)
    flow = "tandem.conversations.flow"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == flow)
    assert tag(chat.id) in logged and chat.id not in logged


# ------------------------------------------------------------------ edge input


def test_a_chunked_body_is_counted_while_it_streams(client: TestClient, chat: Chat) -> None:
    streamed: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(256):  # 16 MB if it were all read
            streamed.append(1)
            yield b"a" * 65536
        yield b'"}'

    response = client.post(
        chat.url + "/messages",
        content=chunks(),
        headers={**chat.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["detail"]
    assert customer_texts(client) == []


@pytest.mark.parametrize(
    ("raw", "explained"),
    [
        (b'{"text": "hi \\ud800 there"}', "surrogate"),
        (b'{"text": "nul \\u0000 byte"}', "NUL"),
        (b'{"text": "ok", "client_message_id": "\\udfff"}', "surrogate"),
    ],
)
def test_unstorable_text_is_422_with_an_explanation(
    client: TestClient, chat: Chat, raw: bytes, explained: str
) -> None:
    response = client.post(
        chat.url + "/messages",
        content=raw,
        headers={**chat.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert explained in response.json()["detail"]
    assert customer_texts(client) == []


def test_nul_in_the_url_is_422(client: TestClient, chat: Chat) -> None:
    assert client.get(f"/api/conversations/{chat.id}%00", headers=chat.headers).status_code == 422
    response = client.get("/api/staff/search?q=a%00b")
    assert response.status_code == 422 and "NUL" in response.json()["detail"]


def test_out_of_range_numbers_are_422(client: TestClient, chat: Chat) -> None:
    huge = 10**30
    response = client.get(f"{chat.url}/messages?after={huge}", headers=chat.headers)
    assert response.status_code == 422
    signed = {"customer_id": str(huge), "expires_at": 4102444800, "signature": "0" * 64}
    assert client.post("/api/conversations", json=signed).status_code in (401, 422)


def test_bad_websocket_frames_get_an_error_frame_and_the_socket_stays(
    client: TestClient, chat: Chat
) -> None:
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        join(socket, chat)
        socket.send_bytes(b"\x00\xff binary")
        assert "binary" in socket.receive_json()["detail"]
        socket.send_text('{"type": "message", "text": "lone \\ud800"}')
        error = socket.receive_json()
        assert error["status"] == 422 and "surrogate" in error["detail"]
        socket.send_text('{"type": "message", "text": "nul \\u0000"}')
        assert "NUL" in socket.receive_json()["detail"]
        socket.send_json({"type": "message"})
        assert socket.receive_json()["detail"].startswith("text:")
        socket.send_json({"type": "dance"})
        assert socket.receive_json()["status"] == 422
        # The payload has the HTTP body's limits (pattern and length) on the socket too.
        socket.send_json({"type": "message", "text": "yes", "payload": "/" + "a" * 300})
        assert socket.receive_json()["detail"].startswith("payload:")
        http = client.post(
            chat.url + "/messages",
            json={"text": "yes", "payload": "/" + "a" * 300},
            headers=chat.headers,
        )
        assert http.status_code == 422
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
    assert customer_texts(client) == []


# ------------------------------------------------------------------ abuse limits


def assert_limited(response: Any, words: str) -> None:
    assert response.status_code == 429, response.text
    assert words in response.json()["detail"]
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_new_conversations_are_limited_per_client(tmp_path: Path) -> None:
    with gateway(tmp_path, limit_conversations_per_minute=3) as client:
        for _ in range(3):
            start_chat(client)
        assert_limited(client.post("/api/conversations"), "Too many new conversations")
        # X-Forwarded-For from a client that is not a trusted proxy changes nothing.
        spoofed = client.post("/api/conversations", headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429


def test_a_trusted_proxy_passes_on_the_client_address(tmp_path: Path) -> None:
    # The proxy (10.0.0.2) appends the client it saw; hops left of it are the client's own.
    with gateway(
        tmp_path, limit_conversations_per_minute=2, trusted_proxies="10.0.0.0/8"
    ) as client:
        proxied = client.__class__(client.app, client=("10.0.0.2", 5000))  # type: ignore[arg-type]
        for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
            forwarded = {"X-Forwarded-For": f"6.6.6.6, {address}"}
            assert proxied.post("/api/conversations", headers=forwarded).status_code == 201
        again = proxied.post("/api/conversations", headers={"X-Forwarded-For": "198.51.100.1"})
        assert_limited(again, "Too many new conversations")


def test_messages_are_limited_per_conversation_and_per_client(tmp_path: Path) -> None:
    with gateway(
        tmp_path, limit_messages_per_minute=3, limit_client_messages_per_minute=6
    ) as client:
        first, second = start_chat(client), start_chat(client)
        url = first.url + "/messages"
        for n in range(3):
            sent = client.post(url, json={"text": f"m{n}"}, headers=first.headers)
            assert sent.status_code == 200
        limited = client.post(url, json={"text": "m3"}, headers=first.headers)
        assert_limited(limited, "Too many messages in this conversation")
        # The socket shares the conversation's count.
        with client.websocket_connect(f"/ws/chat/{first.id}") as socket:
            join(socket, first)
            socket.send_json({"type": "message", "text": "over the socket"})
            frame = socket.receive_json()
            assert frame["status"] == 429 and frame["retry_after"] >= 1
        # Another conversation of the same client: the per-client limit (6; the refused
        # tries count too) is next.
        ok = client.post(second.url + "/messages", json={"text": "x"}, headers=second.headers)
        assert ok.status_code == 200
        limited = client.post(second.url + "/messages", json={"text": "y"}, headers=second.headers)
        assert_limited(limited, "Too many messages from your address")
    assert "m3" not in customer_texts(client)


def test_websocket_frames_are_limited_per_connection(tmp_path: Path) -> None:
    with gateway(tmp_path, limit_ws_frames_per_minute=4) as client:
        chat = start_chat(client)
        with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
            join(socket, chat)  # the auth frame is not counted
            for _ in range(4):
                socket.send_json({"type": "ping"})
                assert socket.receive_json() == {"type": "pong"}
            socket.send_json({"type": "ping"})
            frame = socket.receive_json()
            assert frame["status"] == 429 and "frames" in frame["detail"]
        # A new connection has its own count.
        with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
            join(socket, chat)
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}


async def test_with_redis_every_process_counts_together() -> None:
    """Two gateway processes (two limiters) on one Redis share one count; so does the
    action server's order-check limit."""
    client = await redis_client()
    await client.aclose()
    prefix = f"tandem-test-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        limit_conversations_per_minute=3,
        limit_order_lookups_per_hour=2,
    )
    try:
        first, second = AbuseLimits(settings), AbuseLimits(settings)
        verdicts = [
            await limiter.hit("conversation", "198.51.100.7")
            for limiter in (first, second, first, second)
        ]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert 1 <= verdicts[-1].retry_after <= 60
        lookups, elsewhere = OrderLookupLimit(settings), OrderLookupLimit(settings)
        lookups.failed("tag-1")
        elsewhere.failed("tag-1")
        assert lookups.exhausted("tag-1") and not lookups.exhausted("tag-2")
    finally:
        await delete_prefix(prefix)
