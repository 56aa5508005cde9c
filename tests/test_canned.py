"""Canned replies (service and HTTP, on SQLite and PostgreSQL) and the staff team endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from bot.app import create_app
from tandem.canned import service
from tandem.canned.models import CannedReply
from tandem.config import Settings
from tandem.db import session_scope
from tandem.staff import service as staff_service
from tandem.staff.models import AuditLog

PASSWORD = "correct horse battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff_service, "password_hasher", CHEAP)


def make_user(engine: Engine, email: str, role: str = "staff", **kwargs: object) -> int:
    with session_scope(engine) as session:
        user = staff_service.create_user(
            session,
            email=email,
            password=PASSWORD,
            role=role,
            **kwargs,  # type: ignore[arg-type]
        )
        return user.id


# ------------------------------------------------------------------------------ service


def test_create_list_update_delete(engine: Engine) -> None:
    owner = make_user(engine, "boss@shop.example", role="owner")
    with session_scope(engine) as session:
        first = service.create_reply(session, "  Welcome ", " Hello! ", created_by=owner)
        service.create_reply(session, "apology", "Sorry for the wait.")
        first_id = first.id
    with session_scope(engine) as session:
        replies = service.list_replies(session)
        assert [r.title for r in replies] == ["apology", "Welcome"]  # case-blind order
        stored = service.get_reply(session, first_id)
        assert (stored.title, stored.text, stored.created_by) == ("Welcome", "Hello!", owner)
        assert stored.created_at.tzinfo is not None
    with session_scope(engine) as session:
        service.update_reply(session, first_id, "Welcome", "Hi there!", actor=owner)
    with session_scope(engine) as session:
        assert service.get_reply(session, first_id).text == "Hi there!"
        service.delete_reply(session, first_id, actor=owner)
    with session_scope(engine) as session:
        assert [r.title for r in service.list_replies(session)] == ["apology"]
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions[-3:] == ["canned.created", "canned.updated", "canned.deleted"]


@pytest.mark.parametrize(
    ("title", "text", "message"),
    [
        ("", "text", "title is empty"),
        ("   ", "text", "title is empty"),
        ("x" * 81, "text", "limit is 80"),
        ("Title", " ", "text is empty"),
        ("Title", "y" * 2001, "limit is 2000"),
    ],
)
def test_invalid_replies_are_refused(engine: Engine, title: str, text: str, message: str) -> None:
    with session_scope(engine) as session, pytest.raises(service.InvalidReply, match=message):
        service.create_reply(session, title, text)


def test_limits_are_inclusive(engine: Engine) -> None:
    with session_scope(engine) as session:
        reply = service.create_reply(session, "x" * 80, "y" * 2000)
        assert len(reply.text) == 2000


def test_duplicate_titles_in_any_case_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        service.create_reply(session, "Returns", "a")
        other = service.create_reply(session, "Hours", "b")
        other_id = other.id
    with session_scope(engine) as session, pytest.raises(service.DuplicateTitle):
        service.create_reply(session, "RETURNS", "c")
    with session_scope(engine) as session, pytest.raises(service.DuplicateTitle):
        service.update_reply(session, other_id, "returns", "b")
    with session_scope(engine) as session:
        # Keeping one's own title is not a duplicate.
        service.update_reply(session, other_id, "HOURS", "b2")


def test_unknown_ids_are_not_found(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(service.ReplyNotFound):
        service.update_reply(session, 999, "t", "x")
    with session_scope(engine) as session, pytest.raises(service.ReplyNotFound):
        service.delete_reply(session, 999)


def test_seed_defaults_once(engine: Engine) -> None:
    with session_scope(engine) as session:
        added = service.seed_defaults(session)
    assert 3 <= added <= 6
    with session_scope(engine) as session:
        assert service.seed_defaults(session) == 0
        assert session.query(CannedReply).count() == added


def test_seed_defaults_keeps_the_owners_replies(engine: Engine) -> None:
    with session_scope(engine) as session:
        service.create_reply(session, "Mine", "kept")
    with session_scope(engine) as session:
        assert service.seed_defaults(session) == 0
        assert [r.title for r in service.list_replies(session)] == ["Mine"]


# ------------------------------------------------------------------------------ HTTP


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, redis_url=None, rasa_url="http://127.0.0.1:9")
    make_user(engine, "boss@shop.example", role="owner", display_name="Boss")
    make_user(engine, "ann@shop.example", display_name="Ann", capacity=2)
    make_user(engine, "gone@shop.example", display_name="Gone")
    with session_scope(engine) as session:
        gone = staff_service.require_user_by_email(session, "gone@shop.example")
        staff_service.deactivate_user(session, gone, actor=None)
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def log_in(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/api/staff/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def test_owner_manages_and_staff_read(client: TestClient) -> None:
    owner = log_in(client, "boss@shop.example")
    created = client.post(
        "/api/owner/canned-replies", json={"title": "Thanks", "text": "Thank you!"}, headers=owner
    )
    assert created.status_code == 201, created.text
    reply = created.json()["reply"]
    assert reply == {"id": reply["id"], "title": "Thanks", "text": "Thank you!"}
    client.post(
        "/api/owner/canned-replies", json={"title": "Apology", "text": "Sorry"}, headers=owner
    )

    updated = client.put(
        f"/api/owner/canned-replies/{reply['id']}",
        json={"title": "Thanks", "text": "Thanks a lot!"},
        headers=owner,
    )
    assert updated.status_code == 200
    assert updated.json()["reply"]["text"] == "Thanks a lot!"

    log_in(client, "ann@shop.example")
    listed = client.get("/api/staff/canned-replies")
    assert listed.status_code == 200
    assert [(r["title"], r["text"]) for r in listed.json()["replies"]] == [
        ("Apology", "Sorry"),
        ("Thanks", "Thanks a lot!"),
    ]

    owner = log_in(client, "boss@shop.example")
    deleted = client.delete(f"/api/owner/canned-replies/{reply['id']}", headers=owner)
    assert deleted.status_code == 204
    assert [r["title"] for r in client.get("/api/staff/canned-replies").json()["replies"]] == [
        "Apology"
    ]


def test_roles_login_and_csrf(client: TestClient) -> None:
    body = {"title": "T", "text": "x"}
    assert client.get("/api/staff/canned-replies").status_code == 401
    assert client.post("/api/owner/canned-replies", json=body).status_code == 401
    assert client.put("/api/owner/canned-replies/1", json=body).status_code == 401
    assert client.delete("/api/owner/canned-replies/1").status_code == 401

    staff = log_in(client, "ann@shop.example")
    assert client.post("/api/owner/canned-replies", json=body, headers=staff).status_code == 403
    assert client.put("/api/owner/canned-replies/1", json=body, headers=staff).status_code == 403
    assert client.delete("/api/owner/canned-replies/1", headers=staff).status_code == 403

    log_in(client, "boss@shop.example")
    missing_csrf = client.post("/api/owner/canned-replies", json=body)
    assert missing_csrf.status_code == 403
    assert "CSRF" in missing_csrf.json()["detail"]
    wrong = client.post("/api/owner/canned-replies", json=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert client.get("/api/staff/canned-replies").json() == {"replies": []}


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "text": "x"},
        {"title": "T", "text": "   "},
        {"title": "x" * 81, "text": "x"},
        {"title": "T", "text": "y" * 2001},
        {"title": "T"},
        {"title": 5, "text": None},
    ],
)
def test_invalid_bodies_are_422(client: TestClient, body: dict[str, object]) -> None:
    owner = log_in(client, "boss@shop.example")
    response = client.post("/api/owner/canned-replies", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert client.get("/api/staff/canned-replies").json() == {"replies": []}


def test_unknown_is_404_and_duplicate_is_409(client: TestClient) -> None:
    owner = log_in(client, "boss@shop.example")
    body = {"title": "Hours", "text": "We open at 10."}
    first = client.post("/api/owner/canned-replies", json=body, headers=owner).json()["reply"]
    duplicate = client.post(
        "/api/owner/canned-replies", json={"title": "hours", "text": "x"}, headers=owner
    )
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["detail"]
    second = client.post(
        "/api/owner/canned-replies", json={"title": "Other", "text": "x"}, headers=owner
    ).json()["reply"]
    clash = client.put(
        f"/api/owner/canned-replies/{second['id']}",
        json={"title": "HOURS", "text": "x"},
        headers=owner,
    )
    assert clash.status_code == 409
    assert client.put("/api/owner/canned-replies/9999", json=body, headers=owner).status_code == 404
    assert client.delete("/api/owner/canned-replies/9999", headers=owner).status_code == 404
    # Nothing stored was lost by the refused requests.
    replies = client.get("/api/staff/canned-replies").json()["replies"]
    assert replies == [first, second]


def test_team_lists_active_accounts_with_presence(client: TestClient) -> None:
    assert client.get("/api/staff/team").status_code == 401
    staff = log_in(client, "ann@shop.example")
    response = client.put("/api/staff/presence", json={"state": "away"}, headers=staff)
    assert response.status_code == 200
    team = client.get("/api/staff/team")
    assert team.status_code == 200
    by_name = {member["display_name"]: member for member in team.json()["team"]}
    assert set(by_name) == {"Boss", "Ann"}  # the deactivated account is not offered
    assert by_name["Ann"]["presence"] == "away"
    assert by_name["Ann"]["capacity"] == 2
    assert by_name["Ann"]["load"] == 0
    assert by_name["Boss"] | {"id": 0} == {
        "id": 0,
        "display_name": "Boss",
        "role": "owner",
        "presence": "offline",
        "load": 0,
        "capacity": 3,
    }
    client.put("/api/staff/presence", json={"state": "online", "capacity": 4}, headers=staff)
    ann = next(m for m in client.get("/api/staff/team").json()["team"] if m["role"] == "staff")
    assert (ann["presence"], ann["capacity"]) == ("online", 4)
