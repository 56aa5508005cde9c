"""Regression tests for the staff side of issue 12: sessions that end close their open
staff sockets (finding 5), and personal data only for the holder or the owner, audited
(finding 6). SQLite with the demo business; no Rasa is needed (conversations are set up
in the database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from bot.app import create_app
from bot.auth import CSRF_HEADER, SESSION_COOKIE
from tandem.config import Settings
from tandem.conversations import service
from tandem.conversations.states import State
from tandem.db import migrate, session_scope
from tandem.run import free_port, seed_demo_database
from tandem.staff import access
from tandem.staff import service as staff_service
from tandem.staff.models import AuditLog

PASSWORD = "staff security password"


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        staff_service, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024)
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    migrate(url)
    seed_demo_database(url)
    settings = Settings(
        database_url=url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sentiment_enabled=False,
        staff_ws_recheck_seconds=0.3,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def account(client: TestClient, email: str, role: str = "staff") -> dict[str, Any]:
    """An account and a live session: its id and the headers a browser would send."""
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        user = staff_service.get_user_by_email(session, email) or staff_service.create_user(
            session, email=email, password=PASSWORD, display_name=email.split("@")[0], role=role
        )
        new = staff_service.start_session(session, user)
        return {
            "id": user.id,
            "headers": {"Cookie": f"{SESSION_COOKIE}={new.token}", CSRF_HEADER: new.csrf_token},
        }


def assert_closed_for_session_end(socket: Any) -> None:
    frame = socket.receive_json()
    assert frame == {"type": "error", "status": 401, "detail": "Your session ended; log in again."}
    with pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_json()
    assert closed.value.code == 4401


# ------------------------------------------------------------------ finding 5


@pytest.mark.parametrize("action", ["deactivate", "reset-password"])
def test_owner_action_closes_the_members_open_sockets(client: TestClient, action: str) -> None:
    owner = account(client, "boss@shop.example", "owner")
    ann = account(client, "ann@shop.example")
    ann_tablet = account(client, "ann@shop.example")  # a second login of the same account
    with (
        client.websocket_connect("/ws/staff", headers=ann["headers"]) as phone,
        client.websocket_connect("/ws/staff", headers=ann_tablet["headers"]) as tablet,
    ):
        assert phone.receive_json()["type"] == "ready"
        assert tablet.receive_json()["type"] == "ready"
        body = {"password": "a brand new password"} if action == "reset-password" else {}
        done = client.post(
            f"/api/owner/staff/{ann['id']}/{action}", json=body, headers=owner["headers"]
        )
        assert done.status_code == 200, done.text
        assert_closed_for_session_end(phone)
        assert_closed_for_session_end(tablet)


def test_logout_closes_only_that_sessions_sockets(client: TestClient) -> None:
    ann = account(client, "ann@shop.example")
    ann_tablet = account(client, "ann@shop.example")
    with (
        client.websocket_connect("/ws/staff", headers=ann["headers"]) as phone,
        client.websocket_connect("/ws/staff", headers=ann_tablet["headers"]) as tablet,
    ):
        phone.receive_json(), tablet.receive_json()
        assert client.post("/api/staff/logout", headers=ann["headers"]).status_code == 204
        assert_closed_for_session_end(phone)
        tablet.send_json({"type": "ping"})
        assert tablet.receive_json()["type"] == "pong"


def test_the_socket_rechecks_its_session(client: TestClient) -> None:
    ann = account(client, "ann@shop.example")
    with client.websocket_connect("/ws/staff", headers=ann["headers"]) as socket:
        assert socket.receive_json()["type"] == "ready"
        # Ended where no event is sent (the command line): the periodic check notices.
        with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
            user = staff_service.get_user(session, ann["id"])
            staff_service.deactivate_user(session, user, actor=None)
        assert_closed_for_session_end(socket)


# ------------------------------------------------------------------ finding 6


def held_conversation(client: TestClient, holder_id: int | None) -> str:
    """Customer 1's conversation (with their e-mail in a message), held by `holder_id`."""
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        conversation = service.create_conversation(
            session, customer_id=1, verified_via="signed_identity"
        )
        service.add_message(
            session,
            conversation,
            sender="customer",
            text="I am Olivia Bennett, write to olivia.bennett@example.com or +1 415 555 0142",
        )
        service.transition(session, conversation, State.QUEUED, actor="bot", reason="test")
        if holder_id is not None:
            service.transition(
                session, conversation, State.WITH_STAFF, actor="staff", reason="test"
            )
            conversation.assigned_staff_id = holder_id
        return conversation.id


def views_recorded(client: TestClient, conversation_id: str) -> list[tuple[int | None, str]]:
    with session_scope(client.app.state.engine) as session:  # type: ignore[attr-defined]
        rows = session.scalars(
            select(AuditLog).where(
                AuditLog.action == access.VIEWED, AuditLog.target == conversation_id
            )
        ).all()
        return [(row.actor_user_id, (row.detail or {})["as"]) for row in rows]


def test_personal_data_only_for_the_holder_and_the_owner_and_audited(client: TestClient) -> None:
    ann, bob = account(client, "ann@shop.example"), account(client, "bob@shop.example")
    owner = account(client, "boss@shop.example", "owner")
    chat = held_conversation(client, ann["id"])
    url = f"/api/staff/conversations/{chat}"

    seen_by_bob = client.get(url, headers=bob["headers"]).json()
    assert seen_by_bob["personal_data"] is False
    assert set(seen_by_bob["customer"]) == {"tier", "lifetime_value", "verified", "verified_via"}
    text = seen_by_bob["transcript"][0]["text"]
    assert "olivia.bennett@example.com" not in text and "555 0142" not in text
    assert "[EMAIL]" in text and "[PHONE]" in text
    assert "olivia" not in seen_by_bob["summary"]["text"].lower()
    assert views_recorded(client, chat) == []

    for member in (ann, owner):
        full = client.get(url, headers=member["headers"]).json()
        assert full["personal_data"] is True
        assert full["customer"]["email"] == "olivia.bennett@example.com"
        assert "olivia.bennett@example.com" in full["transcript"][0]["text"]
    # The console reloads an open conversation often: one row per look, not per reload.
    client.get(url, headers=ann["headers"])
    assert views_recorded(client, chat) == [(ann["id"], "holder"), (owner["id"], "owner")]


def test_queued_conversations_are_masked_for_every_member(client: TestClient) -> None:
    ann = account(client, "ann@shop.example")
    chat = held_conversation(client, None)
    seen = client.get(f"/api/staff/conversations/{chat}", headers=ann["headers"]).json()
    assert seen["personal_data"] is False and "email" not in seen["customer"]


def test_notes_only_by_the_holder_or_the_owner(client: TestClient) -> None:
    ann, bob = account(client, "ann@shop.example"), account(client, "bob@shop.example")
    owner = account(client, "boss@shop.example", "owner")
    chat = held_conversation(client, ann["id"])
    url = f"/api/staff/conversations/{chat}/notes"
    refused = client.post(url, json={"text": "bob was here"}, headers=bob["headers"])
    assert refused.status_code == 403 and "can add notes" in refused.json()["detail"]
    for member in (ann, owner):
        assert client.post(url, json={"text": "ok"}, headers=member["headers"]).status_code == 200
    queued = held_conversation(client, None)
    assert (
        client.post(
            f"/api/staff/conversations/{queued}/notes", json={"text": "x"}, headers=ann["headers"]
        ).status_code
        == 403
    )


def test_live_messages_of_queued_conversations_are_masked_for_members(client: TestClient) -> None:
    ann = account(client, "ann@shop.example")
    owner = account(client, "boss@shop.example", "owner")
    desk = client.app.state.desk  # type: ignore[attr-defined]
    text = "write to olivia.bennett@example.com please"
    with (
        client.websocket_connect("/ws/staff", headers=ann["headers"]) as member,
        client.websocket_connect("/ws/staff", headers=owner["headers"]) as boss,
    ):
        member.receive_json(), boss.receive_json()
        for assigned in (None, ann["id"]):
            event = {
                "type": "customer_message",
                "conversation_id": "c" * 32,
                "assigned_staff_id": assigned,
                "message": {"id": 1, "sender": "customer", "text": text},
            }
            client.portal.call(desk.publisher.to_staff, event)  # type: ignore[union-attr]
        queued, held = member.receive_json(), member.receive_json()
        assert "olivia.bennett@example.com" not in queued["message"]["text"]
        assert "[EMAIL]" in queued["message"]["text"]
        assert held["message"]["text"] == text  # ann holds this one
        assert boss.receive_json()["message"]["text"] == text  # the owner sees all


def test_out_of_range_ids_in_owner_paths_are_422(client: TestClient) -> None:
    owner = account(client, "boss@shop.example", "owner")
    huge = 10**30
    for method, path in [
        ("GET", f"/api/owner/privacy/customers/{huge}/export"),
        ("POST", f"/api/owner/staff/{huge}/deactivate"),
        ("DELETE", f"/api/owner/canned-replies/{huge}"),
    ]:
        response = client.request(method, path, headers=owner["headers"])
        assert response.status_code == 422, (path, response.text)
        assert "out of range" in response.json()["detail"]


def test_a_binary_frame_on_the_staff_socket_gets_an_error_frame(client: TestClient) -> None:
    ann = account(client, "ann@shop.example")
    with client.websocket_connect("/ws/staff", headers=ann["headers"]) as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_bytes(b"\x00\xff")
        assert socket.receive_json()["status"] == 422
        socket.send_json({"type": "ping"})
        assert socket.receive_json()["type"] == "pong"
