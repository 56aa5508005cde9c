"""The owner's privacy API (/api/owner/privacy) through the app: auth, CSRF, contract."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from bot.app import create_app
from tandem.business.models import Customer
from tandem.business.seed import seed_demo
from tandem.config import Settings
from tandem.conversations.models import Conversation, Message
from tandem.db import make_engine, migrate, session_scope
from tandem.staff import service as staff_service

PASSWORD = "correct horse battery"
BASE = "/api/owner/privacy"


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(staff_service, "password_hasher", cheap)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'privacy.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        seed_demo(session)
        for email, role in (("boss@shop.example", "owner"), ("ann@shop.example", "staff")):
            staff_service.create_user(session, email=email, password=PASSWORD, role=role)
    yield engine
    engine.dispose()


@pytest.fixture
def client(db: Engine) -> Iterator[TestClient]:
    settings = Settings(
        database_url=str(db.url),
        redis_url=None,
        rasa_url="http://127.0.0.1:9",
        sentiment_enabled=False,
        retention_days=30,
    )
    with TestClient(create_app(settings, db)) as test_client:
        yield test_client


def log_in(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/api/staff/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


@pytest.fixture
def olivia(db: Engine) -> tuple[int, str]:
    with session_scope(db) as session:
        customer = session.scalar(
            select(Customer).where(Customer.email == "olivia.bennett@example.com")
        )
        assert customer is not None
        conversation = Conversation(customer_id=customer.id, state="closed")
        session.add(conversation)
        session.flush()
        session.add(
            Message(conversation_id=conversation.id, sender="customer", text="I'm Olivia, hi")
        )
        session.flush()
        return customer.id, conversation.id


def test_logged_out_gets_401_and_staff_gets_403(client: TestClient, olivia: tuple[int, str]):
    customer_id, conversation_id = olivia
    calls = [
        ("GET", f"{BASE}/customers?q=olivia"),
        ("GET", f"{BASE}/customers/{customer_id}/export"),
        ("GET", f"{BASE}/audit"),
        ("GET", f"{BASE}/retention"),
    ]
    for method, url in calls:
        assert client.request(method, url).status_code == 401
    headers = log_in(client, "ann@shop.example")
    for method, url in calls:
        assert client.request(method, url).status_code == 403, url
    assert client.delete(f"{BASE}/customers/{customer_id}", headers=headers).status_code == 403
    unmask = client.post(
        f"{BASE}/conversations/{conversation_id}/unmask", json={"reason": "x" * 5}, headers=headers
    )
    assert unmask.status_code == 403


def test_csrf_is_required_for_post_and_delete(client: TestClient, olivia: tuple[int, str]):
    customer_id, conversation_id = olivia
    log_in(client, "boss@shop.example")
    bad = {"X-CSRF-Token": "wrong"}
    url = f"{BASE}/conversations/{conversation_id}/unmask"
    assert client.post(url, json={"reason": "complaint"}).status_code == 403
    assert client.post(url, json={"reason": "complaint"}, headers=bad).status_code == 403
    assert client.delete(f"{BASE}/customers/{customer_id}", headers=bad).status_code == 403
    assert client.get(f"{BASE}/customers/{customer_id}/export").status_code == 200


def test_unmask_contract(client: TestClient, olivia: tuple[int, str]) -> None:
    _, conversation_id = olivia
    headers = log_in(client, "boss@shop.example")
    url = f"{BASE}/conversations/{conversation_id}/unmask"
    assert client.post(url, json={}, headers=headers).status_code == 422
    assert client.post(url, json={"reason": " "}, headers=headers).status_code == 422
    missing = client.post(
        f"{BASE}/conversations/nope/unmask", json={"reason": "complaint"}, headers=headers
    )
    assert missing.status_code == 404
    response = client.post(url, json={"reason": "customer complaint"}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["conversation_id"] == conversation_id
    [message] = body["messages"]
    assert set(message) == {"id", "sender", "text", "created_at"}
    assert message["text"] == "I'm Olivia, hi"
    audit = client.get(f"{BASE}/audit", params={"limit": 5}).json()["entries"]
    assert audit[0]["id"] == body["audit_id"]
    assert set(audit[0]) >= {"id", "at", "actor", "action", "target", "detail"}
    assert audit[0]["action"] == "unmask" and audit[0]["target"] == conversation_id
    assert audit[0]["detail"] == {"reason": "customer complaint"}


def test_search_export_delete(client: TestClient, olivia: tuple[int, str]) -> None:
    customer_id, conversation_id = olivia
    headers = log_in(client, "boss@shop.example")
    assert client.get(f"{BASE}/customers", params={"q": " "}).status_code == 422
    assert client.get(f"{BASE}/customers").status_code == 422
    found = client.get(f"{BASE}/customers", params={"q": "Olivia.Bennett"}).json()
    assert found == {
        "customers": [
            {
                "id": customer_id,
                "name": "Olivia Bennett",
                "email": "olivia.bennett@example.com",
                "tier": "vip",
                "conversations": 1,
            }
        ]
    }

    export = client.get(f"{BASE}/customers/{customer_id}/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"] == (
        f"attachment; filename=customer-{customer_id}.json"
    )
    data = export.json()
    assert data["customer"]["id"] == customer_id
    assert data["conversations"][0]["id"] == conversation_id
    assert client.get(f"{BASE}/customers/999999/export").status_code == 404

    deleted = client.delete(f"{BASE}/customers/{customer_id}", headers=headers)
    assert deleted.status_code == 200
    counts = deleted.json()["deleted"]
    assert {"conversations", "messages", "tickets", "orders", "customer"} <= set(counts)
    assert counts["conversations"] == 1 and counts["messages"] == 1 and counts["customer"] == 1
    assert client.delete(f"{BASE}/customers/{customer_id}", headers=headers).status_code == 404
    assert client.get(f"{BASE}/customers", params={"q": "olivia"}).json() == {"customers": []}
    actions = [e["action"] for e in client.get(f"{BASE}/audit").json()["entries"]]
    assert actions[:2] == ["delete_customer", "export_customer"]


def test_retention_endpoint(client: TestClient, olivia: tuple[int, str]) -> None:
    log_in(client, "boss@shop.example")
    body = client.get(f"{BASE}/retention").json()
    assert body["retention_days"] == 30
    assert body["oldest_conversation_at"] is not None
    assert client.get(f"{BASE}/audit", params={"limit": 0}).status_code == 422


def test_delete_also_removes_rasas_copy(db: Engine, olivia: tuple[int, str], tmp_path: Path):
    customer_id, conversation_id = olivia
    tracker = tmp_path / "rasa-tracker.db"
    with sqlite3.connect(tracker) as rasa:
        rasa.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
        rasa.executemany(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)",
            [(conversation_id, "{}"), ("someone-else", "{}")],
        )
    settings = Settings(
        database_url=str(db.url),
        redis_url=None,
        rasa_url="http://127.0.0.1:9",
        sentiment_enabled=False,
        rasa_tracker_db=tracker,
    )
    with TestClient(create_app(settings, db)) as client:
        headers = log_in(client, "boss@shop.example")
        deleted = client.delete(f"{BASE}/customers/{customer_id}", headers=headers)
    assert deleted.status_code == 200
    assert deleted.json()["deleted"]["rasa_events"] == 1
    with sqlite3.connect(tracker) as rasa:
        assert rasa.execute("SELECT sender_id FROM events").fetchall() == [("someone-else",)]
