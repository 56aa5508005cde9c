"""The owner's HTTP API (/api/owner): access rules, CSRF, log, reports, CSV, staff, policy."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from bot.app import create_app
from bot.auth import CSRF_HEADER
from handoff.editing import FILE_HEADER
from tandem.config import PROJECT_ROOT, Settings
from tandem.conversations.states import State
from tandem.db import Base, make_engine, migrate, session_scope
from tandem.staff import service
from tandem.staff.models import AuditLog
from tests.test_reports import Builder

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@dataclass
class Site:
    app: FastAPI
    engine: Engine
    policy_file: Path
    owner_id: int
    staff_id: int
    conversation_id: str
    portal: Any = None  # the running app's event loop, to look at the queue


def build(tmp_path: Path) -> Site:
    url = f"sqlite:///{tmp_path / 'owner.db'}"
    migrate(url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    policy_file = tmp_path / "handoff.yml"
    shutil.copy(PROJECT_ROOT / "handoff.yml", policy_file)
    settings = Settings(
        database_url=url,
        redis_url=None,
        rasa_url="http://127.0.0.1:9",
        handoff_file=policy_file,
        pii_masking=True,
        sentiment_enabled=False,  # scores come from the test data
    )
    app = create_app(settings, engine)
    now = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(engine) as session:
        owner = service.create_user(
            session, email="boss@shop.example", password=PASSWORD, role="owner", display_name="Boss"
        )
        staff = service.create_user(
            session, email="ann@shop.example", password=PASSWORD, display_name="Ann"
        )
        b = Builder(session)
        chat = b.conversation(now)
        b.customer(chat, "I am Jane Doe, mail jane@example.com", now, -0.7, "nlu_fallback")
        b.customer(chat, "=cmd|' /C calc'!A0", now + timedelta(seconds=5), -0.5, "out_of_scope")
        b.escalate(chat, now + timedelta(seconds=6), ["fallbacks"], ["did not understand"])
        b.claim(chat, staff.id, now + timedelta(seconds=20))
        b.say(chat, "staff", "Hello!", now + timedelta(seconds=50))
        b.move(chat, State.CLOSED, now + timedelta(minutes=2), f"staff:{staff.id}")
        chat.csat = 5
        return Site(app, engine, policy_file, owner.id, staff.id, chat.id)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = build(tmp_path)
    with TestClient(site.app) as running:  # runs the lifespan once
        site.portal = running.portal
        yield site


def client_for(site: Site, email: str | None, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A client (own cookie jar), logged in as `email` unless None; returns the CSRF token."""
    client = TestClient(site.app)
    if email is None:
        return client, ""
    response = client.post("/api/staff/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return client, str(response.json()["csrf_token"])


@pytest.fixture
def owner(site: Site) -> tuple[TestClient, str]:
    return client_for(site, "boss@shop.example")


def audit_actions(site: Site) -> list[str]:
    with session_scope(site.engine) as session:
        return [a.action for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]


# ------------------------------------------------------------------ access rules


def routes(site: Site) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/api/owner/log", None),
        ("GET", f"/api/owner/log/{site.conversation_id}", None),
        ("GET", "/api/owner/reports", None),
        ("GET", "/api/owner/export/conversations.csv", None),
        ("GET", "/api/owner/export/messages.csv", None),
        ("GET", "/api/owner/staff", None),
        ("GET", "/api/owner/policy", None),
        (
            "POST",
            "/api/owner/staff",
            {"email": "new@shop.example", "password": PASSWORD, "display_name": "New"},
        ),
        ("POST", f"/api/owner/staff/{site.staff_id}/deactivate", None),
        ("POST", f"/api/owner/staff/{site.staff_id}/reset-password", {"password": PASSWORD}),
        ("PUT", "/api/owner/policy", {"changes": {"triggers.frustration.threshold": 0.6}}),
    ]


def test_logged_out_is_401_and_staff_403_everywhere(site: Site) -> None:
    anonymous, _ = client_for(site, None)
    staff, csrf = client_for(site, "ann@shop.example")
    before = site.policy_file.read_bytes()
    for method, path, body in routes(site):
        assert anonymous.request(method, path, json=body).status_code == 401, path
        response = staff.request(method, path, json=body, headers={CSRF_HEADER: csrf})
        assert response.status_code == 403, path
    assert site.policy_file.read_bytes() == before


def test_owner_reads_every_page(site: Site, owner: tuple[TestClient, str]) -> None:
    client, _ = owner
    for method, path, _body in routes(site):
        if method == "GET":
            assert client.get(path).status_code == 200, path


def test_writes_need_the_csrf_token(site: Site, owner: tuple[TestClient, str]) -> None:
    client, _ = owner
    before = site.policy_file.read_bytes()
    for method, path, body in routes(site):
        if method != "GET":
            assert client.request(method, path, json=body).status_code == 403, path
            wrong = client.request(method, path, json=body, headers={CSRF_HEADER: "nope"})
            assert wrong.status_code == 403, path
    assert site.policy_file.read_bytes() == before
    with session_scope(site.engine) as session:
        assert service.get_user_by_email(session, "new@shop.example") is None
        assert service.get_user(session, site.staff_id).active is True


# ------------------------------------------------------------------ log and reports


def test_log_and_detail(site: Site, owner: tuple[TestClient, str]) -> None:
    client, _ = owner
    body = client.get("/api/owner/log", params={"outcome": "handed_off"}).json()
    assert body["total"] == 1 and (body["page"], body["page_size"]) == (1, 50)
    row = body["conversations"][0]
    assert row["id"] == site.conversation_id
    assert row["staff"] == {"id": site.staff_id, "name": "Ann"}
    assert row["reasons"] == ["fallbacks"] and row["csat"] == 5
    assert row["customer"]["label"] == "Visitor"
    assert client.get("/api/owner/log", params={"outcome": "bot"}).json()["total"] == 0
    detail = client.get(f"/api/owner/log/{site.conversation_id}").json()
    assert detail["masked"] is True
    first = detail["messages"][0]["text"]
    assert "jane@example.com" not in first and "[EMAIL]" in first and "Jane" not in first
    assert detail["escalations"][0]["reasons"] == ["did not understand"]
    assert {"kind", "from", "to", "actor", "reason", "at"} <= set(detail["events"][0])
    assert client.get("/api/owner/log/nope").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"to": "tomorrow"}, "to"),
        ({"outcome": "lost"}, "outcome"),
        ({"sentiment": "meh"}, "sentiment"),
        ({"staff_id": "-1"}, "staff_id"),
        ({"page_size": "1000"}, "page_size"),
    ],
)
def test_bad_log_parameters_are_422(
    owner: tuple[TestClient, str], params: dict[str, str], field: str
) -> None:
    client, _ = owner
    response = client.get("/api/owner/log", params=params)
    assert response.status_code == 422
    assert response.json()["field"] == field and field in response.json()["detail"]
    export = client.get("/api/owner/export/messages.csv", params=params)
    assert export.status_code == (200 if field == "page_size" else 422)


def test_reports_default_to_30_days(site: Site, owner: tuple[TestClient, str]) -> None:
    client, _ = owner
    body = client.get("/api/owner/reports").json()
    start = datetime.fromisoformat(body["period"]["from"]).date()
    end = datetime.fromisoformat(body["period"]["to"]).date()
    assert (end - start).days == 29 and len(body["sentiment_per_day"]) == 30
    assert body["outcomes"]["handed_off"] == {"count": 1, "share": 1.0}
    assert body["outcomes"]["total"] == 1
    assert body["wait_to_first_reply"] == {"p50": 44.0, "p90": 44.0, "count": 1}
    assert body["csat"]["distribution"]["5"] == 1
    assert body["fallback_rate"] == 1.0
    assert len(body["busiest_hours"]) == 24
    assert {"escalations_by_reason", "top_intents"} <= set(body)
    bad = client.get("/api/owner/reports", params={"from": "2026-05-01", "to": "2026-04-01"})
    assert bad.status_code == 422 and bad.json()["field"] == "from"


def test_csv_exports_are_attachments_masked_and_defused(
    site: Site, owner: tuple[TestClient, str]
) -> None:
    client, _ = owner
    response = client.get("/api/owner/export/messages.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    texts = [r["text"] for r in rows]
    assert not any("jane@example.com" in t for t in texts)
    assert "'=cmd|' /C calc'!A0" in texts
    conversations = client.get("/api/owner/export/conversations.csv")
    assert conversations.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(conversations.text)))
    assert [r["conversation_id"] for r in rows] == [site.conversation_id]
    assert rows[0]["outcome"] == "handed_off" and rows[0]["csat"] == "5"


# ------------------------------------------------------------------ staff accounts


def test_staff_list_create_and_conflicts(site: Site, owner: tuple[TestClient, str]) -> None:
    client, csrf = owner
    h = {CSRF_HEADER: csrf}
    listed = client.get("/api/owner/staff").json()["staff"]
    assert [s["email"] for s in listed] == ["boss@shop.example", "ann@shop.example"]
    assert set(listed[0]) >= {
        "id",
        "email",
        "display_name",
        "role",
        "active",
        "capacity",
        "last_login_at",
    }
    assert listed[0]["last_login_at"] is not None and listed[1]["last_login_at"] is None
    new = {
        "email": "Raj@Shop.example",
        "display_name": "Raj",
        "password": PASSWORD,
        "role": "staff",
        "capacity": 4,
    }
    created = client.post("/api/owner/staff", json=new, headers=h)
    assert created.status_code == 201
    assert created.json()["email"] == "raj@shop.example" and created.json()["capacity"] == 4
    assert client.post("/api/owner/staff", json=new, headers=h).status_code == 409
    for bad in (
        {"email": "not-an-email"},
        {"password": "short"},
        {"role": "admin"},
        {"capacity": 500},
        {"email": "x@shop.example", "capacity": "lots"},
    ):
        response = client.post(
            "/api/owner/staff", json=new | {"email": "x@shop.example"} | bad, headers=h
        )
        assert response.status_code == 422, bad
    assert (
        client.post("/api/owner/staff", json={"email": "y@shop.example"}, headers=h).status_code
        == 422
    )
    raj, _ = client_for(site, "raj@shop.example")
    assert raj.get("/api/staff/me").status_code == 200
    assert audit_actions(site).count("staff.created") == 3


def test_deactivate_ends_sessions_but_not_yourself(
    site: Site, owner: tuple[TestClient, str]
) -> None:
    client, csrf = owner
    h = {CSRF_HEADER: csrf}
    ann, ann_csrf = client_for(site, "ann@shop.example")
    online = ann.put(
        "/api/staff/presence", json={"state": "online"}, headers={CSRF_HEADER: ann_csrf}
    )
    assert online.status_code == 200
    assert (
        site.portal.call(site.app.state.desk.queue.presence, str(site.staff_id)).state == "online"
    )
    response = client.post(f"/api/owner/staff/{site.staff_id}/deactivate", headers=h)
    assert response.status_code == 200 and response.json()["active"] is False
    assert ann.get("/api/staff/me").status_code == 401
    assert client.post(f"/api/owner/staff/{site.owner_id}/deactivate", headers=h).status_code == 409
    assert client.post("/api/owner/staff/9999/deactivate", headers=h).status_code == 404
    assert "staff.deactivated" in audit_actions(site)
    assert client.get("/api/staff/me").status_code == 200  # the owner is still in
    # Off duty at once: no new chat is routed to the deactivated member.
    queue = site.app.state.desk.queue
    assert site.portal.call(queue.presence, str(site.staff_id)).state == "offline"


def test_reset_password(site: Site, owner: tuple[TestClient, str]) -> None:
    client, csrf = owner
    h = {CSRF_HEADER: csrf}
    ann, _ = client_for(site, "ann@shop.example")
    fresh = "a brand new passphrase"
    path = f"/api/owner/staff/{site.staff_id}/reset-password"
    assert client.post(path, json={"password": "short"}, headers=h).status_code == 422
    assert client.post(path, json={"password": fresh}, headers=h).status_code == 200
    assert ann.get("/api/staff/me").status_code == 401
    old = TestClient(site.app).post(
        "/api/staff/login", json={"email": "ann@shop.example", "password": PASSWORD}
    )
    assert old.status_code == 401
    client_for(site, "ann@shop.example", fresh)
    reset = client.post("/api/owner/staff/9999/reset-password", json={"password": fresh}, headers=h)
    assert reset.status_code == 404
    assert "staff.password_reset" in audit_actions(site)


# ------------------------------------------------------------------ policy


def test_policy_get_and_valid_put(site: Site, owner: tuple[TestClient, str]) -> None:
    client, csrf = owner
    body = client.get("/api/owner/policy").json()
    assert body["policy"]["triggers"]["frustration"]["threshold"] == 0.6
    paths = {item["path"]: item for item in body["editable"]}
    assert paths["triggers.frustration.threshold"] | {"label": ""} == {
        "path": "triggers.frustration.threshold",
        "label": "",
        "type": "number",
        "min": 0,
        "max": 1,
        "nullable": False,
    }
    assert {"triggers.legal.enabled", "triggers.legal.priority"} <= set(paths)
    changes = {
        "triggers.frustration.threshold": 0.65,
        "triggers.negative_streak.turns": 4,
        "triggers.legal.enabled": False,
        "triggers.high_value.lifetime_value": None,
        "triggers.complaint.priority": 5,
    }
    response = client.put(
        "/api/owner/policy", json={"changes": changes}, headers={CSRF_HEADER: csrf}
    )
    assert response.status_code == 200, response.text
    policy = response.json()["policy"]
    assert policy["triggers"]["frustration"]["threshold"] == 0.65
    assert policy["triggers"]["high_value"]["lifetime_value"] is None
    # Applied to the running gateway...
    running = site.app.state.flows.policy
    assert running.triggers.negative_streak.turns == 4 and running.triggers.legal.enabled is False
    # ...and saved as readable YAML that loads back the same.
    text = site.policy_file.read_text()
    assert text.startswith(FILE_HEADER)
    saved = yaml.safe_load(text)
    assert saved["triggers"]["complaint"]["priority"] == 5
    assert saved["triggers"]["legal"]["words"][0] == "lawyer"
    from handoff.policy import load_policy

    assert load_policy(site.policy_file) == running
    assert client.get("/api/owner/policy").json()["policy"] == policy
    assert "policy.updated" in audit_actions(site)
    with session_scope(site.engine) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "policy.updated")).one()
        assert entry.detail["changes"]["triggers.frustration.threshold"] == {
            "from": 0.6,
            "to": 0.65,
        }
        assert entry.actor_user_id == site.owner_id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"triggers.frustration.threshold": 1.5}, "triggers.frustration.threshold"),
        ({"triggers.frustration.threshold": "high"}, "triggers.frustration.threshold"),
        ({"triggers.negative_streak.turns": 0}, "triggers.negative_streak.turns"),
        ({"triggers.negative_streak.turns": 2.5}, "triggers.negative_streak.turns"),
        ({"triggers.fallbacks.count": True}, "triggers.fallbacks.count"),
        ({"triggers.legal.enabled": "no"}, "triggers.legal.enabled"),
        ({"triggers.legal.words": []}, "triggers.legal.words"),
        ({"currency_symbol": "€"}, "currency_symbol"),
        ({"triggers.complaint.priority": 101}, "triggers.complaint.priority"),
        ({"triggers.frustration.threshold": None}, "triggers.frustration.threshold"),
        (
            {"triggers.frustration.threshold": 0.5, "triggers.repeated_intent.count": 1},
            "triggers.repeated_intent.count",
        ),
        ({}, "changes"),
    ],
)
def test_bad_policy_changes_are_422_and_nothing_is_written(
    site: Site, owner: tuple[TestClient, str], changes: dict[str, Any], field: str
) -> None:
    client, csrf = owner
    before = site.policy_file.read_bytes()
    running = site.app.state.flows.policy
    response = client.put(
        "/api/owner/policy", json={"changes": changes}, headers={CSRF_HEADER: csrf}
    )
    assert response.status_code == 422
    assert response.json()["field"] == field and field in response.json()["detail"]
    assert site.policy_file.read_bytes() == before
    assert site.app.state.flows.policy is running
    assert "policy.updated" not in audit_actions(site)


def test_malformed_policy_body_is_422(site: Site, owner: tuple[TestClient, str]) -> None:
    client, csrf = owner
    before = site.policy_file.read_bytes()
    for body in ({"changes": [1, 2]}, {"nope": 1}):
        response = client.put("/api/owner/policy", json=body, headers={CSRF_HEADER: csrf})
        assert response.status_code == 422
    assert site.policy_file.read_bytes() == before
