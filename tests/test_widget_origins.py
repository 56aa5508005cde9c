"""Which websites may embed the widget: CORS for the customer API, the Origin check on the
chat WebSocket, and how the widget script and the demo page are served.

No Rasa is needed: the app is built like tests/test_gateway.py does, with Rasa on a
closed port (nothing here sends a message to the bot).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.app import create_app
from bot.origins import CLOSE_FORBIDDEN_ORIGIN
from tandem.config import Settings
from tandem.db import migrate
from tandem.run import free_port
from tests.chat_client import Chat, join, start_chat

SHOP = "https://shop.example"
OTHER = "https://evil.example"


def make_client(tmp_path: Path, allowed: str) -> TestClient:
    url = f"sqlite:///{tmp_path / 'widget.db'}"
    migrate(url)
    settings = Settings(
        database_url=url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        rasa_timeout_seconds=1.0,
        sentiment_enabled=False,
        widget_allowed_origins=allowed,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, f"{SHOP}, https://www.shop.example/") as test_client:
        yield test_client


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, "*") as test_client:
        yield test_client


def preflight(client: TestClient, origin: str) -> dict[str, str]:
    response = client.options(
        "/api/conversations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    return {k.lower(): v for k, v in response.headers.items()} | {
        "status": str(response.status_code)
    }


def new_conversation(client: TestClient) -> Chat:
    return start_chat(client, {})


def refusal_code(client: TestClient, chat: Chat, origin: str) -> int:
    """The close code of a chat socket that the gateway refuses before accepting it."""
    path = f"/ws/chat/{chat.id}"
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(path, headers={"Origin": origin}),
    ):
        pass
    return int(refused.value.code)


def test_preflight_from_an_allowed_origin_is_answered(client: TestClient) -> None:
    for origin in (SHOP, "https://www.shop.example"):
        headers = preflight(client, origin)
        assert headers["status"] == "200"
        assert headers["access-control-allow-origin"] == origin
        assert "POST" in headers["access-control-allow-methods"]


def test_preflight_from_another_origin_gets_no_cors_headers(client: TestClient) -> None:
    headers = preflight(client, OTHER)
    assert "access-control-allow-origin" not in headers
    simple = client.get("/api/business", headers={"Origin": OTHER})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in {k.lower() for k in simple.headers}


def test_simple_request_from_an_allowed_origin_is_readable(client: TestClient) -> None:
    response = client.get("/api/business", headers={"Origin": SHOP})
    assert response.headers["access-control-allow-origin"] == SHOP
    # no cookies cross sites: the conversation's id and token are the widget's credential
    assert "access-control-allow-credentials" not in {k.lower() for k in response.headers}


def test_chat_socket_from_a_foreign_origin_is_refused(client: TestClient) -> None:
    chat = new_conversation(client)
    assert refusal_code(client, chat, OTHER) == CLOSE_FORBIDDEN_ORIGIN == 4403


@pytest.mark.parametrize("origin", [SHOP, "https://www.shop.example", "http://testserver"])
def test_chat_socket_from_an_allowed_or_same_host_origin_is_accepted(
    client: TestClient, origin: str
) -> None:
    chat = new_conversation(client)
    with client.websocket_connect(f"/ws/chat/{chat.id}", headers={"Origin": origin}) as socket:
        join(socket, chat)
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


def test_chat_socket_without_origin_is_accepted(client: TestClient) -> None:
    # Not a browser (a server-side integration): there is no page to protect.
    chat = new_conversation(client)
    with client.websocket_connect(f"/ws/chat/{chat.id}") as socket:
        join(socket, chat)
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


def test_star_allows_any_site(open_client: TestClient) -> None:
    headers = preflight(open_client, OTHER)
    assert headers["status"] == "200"
    assert headers["access-control-allow-origin"] in {"*", OTHER}
    chat = new_conversation(open_client)
    with open_client.websocket_connect(f"/ws/chat/{chat.id}", headers={"Origin": OTHER}) as socket:
        join(socket, chat)
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


def test_no_allowed_origins_means_same_site_only(tmp_path: Path) -> None:
    with make_client(tmp_path, "") as client:
        assert "access-control-allow-origin" not in preflight(client, SHOP)
        assert refusal_code(client, new_conversation(client), SHOP) == 4403


def test_widget_script_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.text
    assert "attachShadow" in body and "tandem-launcher" in body
    # data is rendered as text; the only HTML the script writes is built with createElement
    assert "innerHTML" not in body
    # ASCII only: a host page in another encoding cannot garble the widget's words
    assert body.isascii()


def test_demo_page_is_html_with_a_strict_csp_and_one_widget_tag(client: TestClient) -> None:
    response = client.get("/demo")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    html = response.text
    assert html.count("<script") == 1 and 'src="/widget.js"' in html
    assert " on" + "click=" not in html.lower()
    assert "Marigold &amp; Moss" in html
    assert "How to embed" in html
    css = client.get("/static/demo.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_conversation_token_header_may_cross_sites(client: TestClient) -> None:
    response = client.options(
        "/api/conversations/abc/messages",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-conversation-token",
        },
    )
    assert response.status_code == 200
    assert "x-conversation-token" in response.headers["access-control-allow-headers"].lower()
