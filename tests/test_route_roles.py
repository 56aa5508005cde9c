"""Every HTTP route checks its role on the server: one case per route and role.

The routes come from the app's own OpenAPI schema, so a new route is covered (or fails
the classification test) without anyone remembering to add it here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.auth import CSRF_HEADER
from tandem.config import PROJECT_ROOT, Settings
from tandem.db import migrate, session_scope
from tandem.run import free_port
from tandem.staff import service

PASSWORD = "route roles password"
# Reached without logging in: the customer API and login itself.
PUBLIC = ("/api/business", "/api/conversations", "/api/staff/login", "/healthz")
# Routes that answer anyone but act only on the caller's own session.
SELF_SERVICE = {("/api/staff/logout", "post")}
ANY_STAFF = ("/api/staff/",)
OWNER_ONLY = ("/api/owner/",)
SAFE = {"get", "head", "options"}
# The ticket inbox: staff and owners alike (the owner also works colleagues' tickets).
TICKET_ROUTES = {
    ("/api/staff/tickets", "get"),
    ("/api/staff/tickets/{ticket_id}", "get"),
    ("/api/staff/tickets/{ticket_id}/claim", "post"),
    ("/api/staff/tickets/{ticket_id}/reply", "post"),
    ("/api/staff/tickets/{ticket_id}/done", "post"),
}


@dataclass(frozen=True)
class Route:
    path: str
    method: str

    @property
    def kind(self) -> str:
        if (self.path, self.method) in SELF_SERVICE:
            return "self"
        if self.path.startswith(OWNER_ONLY):
            return "owner"
        if self.path.startswith(PUBLIC):
            return "public"
        if self.path.startswith(ANY_STAFF):
            return "staff"
        return "unclassified"

    def url(self) -> str:
        # Unknown ids everywhere: a route must refuse the wrong role before it looks anything
        # up, and nothing stored is touched by these calls.
        return re.sub(r"\{[^}]+\}", "999999", self.path)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("roles")
    url = f"sqlite:///{tmp / 'roles.db'}"
    migrate(url)
    # A copy of the owner's files, so a route that writes them cannot touch the real ones.
    shutil.copy(PROJECT_ROOT / "handoff.yml", tmp / "handoff.yml")
    settings = Settings(
        database_url=url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sentiment_enabled=False,
        handoff_file=tmp / "handoff.yml",
        redis_url=None,
        login_rate_limit_per_minute=1000,
    )
    with TestClient(create_app(settings)) as test_client:
        engine = test_client.app.state.engine  # type: ignore[attr-defined]
        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        original, service.password_hasher = service.password_hasher, cheap
        try:
            with session_scope(engine) as session:
                for role in ("staff", "owner"):
                    service.create_user(
                        session, email=f"{role}@roles.example", password=PASSWORD, role=role
                    )
        finally:
            service.password_hasher = original
        yield test_client


def all_routes(client: TestClient) -> list[Route]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return sorted(
        (Route(path, method) for path, item in schema["paths"].items() for method in item),
        key=str,
    )


def login(client: TestClient, role: str) -> dict[str, str]:
    """Cookie and CSRF headers for one role (sent explicitly: the client keeps no cookies)."""
    client.cookies.clear()
    response = client.post(
        "/api/staff/login", json={"email": f"{role}@roles.example", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    cookie = response.cookies.get("tandem_session")
    client.cookies.clear()
    return {"Cookie": f"tandem_session={cookie}", CSRF_HEADER: response.json()["csrf_token"]}


def call(client: TestClient, route: Route, headers: dict[str, str]) -> int:
    body: Any = {} if route.method in ("post", "put", "patch") else None
    response = client.request(route.method.upper(), route.url(), json=body, headers=headers)
    return response.status_code


def test_every_route_is_classified(client: TestClient) -> None:
    routes = all_routes(client)
    assert len(routes) > 30
    unclassified = [str(r) for r in routes if r.kind == "unclassified"]
    assert unclassified == [], "add these routes to a role class in this test"


def test_the_ticket_inbox_is_for_staff_and_owners(client: TestClient) -> None:
    found = {(r.path, r.method): r.kind for r in all_routes(client) if "/tickets" in r.path}
    assert found == dict.fromkeys(TICKET_ROUTES, "staff")


def test_logged_out_gets_401_on_every_staff_and_owner_route(client: TestClient) -> None:
    client.cookies.clear()
    wrong = {
        str(r): status
        for r in all_routes(client)
        if r.kind in ("staff", "owner") and (status := call(client, r, {})) != 401
    }
    assert wrong == {}


def test_staff_get_403_on_every_owner_route(client: TestClient) -> None:
    headers = login(client, "staff")
    owner_routes = [r for r in all_routes(client) if r.kind == "owner"]
    assert len(owner_routes) >= 10
    wrong = {str(r): status for r in owner_routes if (status := call(client, r, headers)) != 403}
    assert wrong == {}


@pytest.mark.parametrize("role", ["staff", "owner"])
def test_role_passes_the_check_on_its_routes(client: TestClient, role: str) -> None:
    headers = login(client, role)
    kinds = {"staff"} | ({"owner"} if role == "owner" else set())
    wrong = {
        str(r): status
        for r in all_routes(client)
        if r.kind in kinds and (status := call(client, r, headers)) in (401, 403)
    }
    assert wrong == {}


@pytest.mark.parametrize("role", ["staff", "owner"])
def test_state_changing_routes_need_the_csrf_token(client: TestClient, role: str) -> None:
    headers = login(client, role)
    cookie_only = {"Cookie": headers["Cookie"]}
    kinds = {"staff"} | ({"owner"} if role == "owner" else set())
    unsafe = [r for r in all_routes(client) if r.kind in kinds and r.method not in SAFE]
    assert unsafe
    wrong = {str(r): status for r in unsafe if (status := call(client, r, cookie_only)) != 403}
    assert wrong == {}


def test_pages_are_public_and_carry_security_headers(client: TestClient) -> None:
    for page in ("/demo", "/staff", "/owner"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"


def test_static_assets_refuse_paths_outside_the_folder(client: TestClient) -> None:
    for name in ("..%2Fapp.py", "app.py", ".hidden.js", "missing.js"):
        assert client.get(f"/static/{name}").status_code == 404, name


def test_session_cookie_flags(client: TestClient, tmp_path: Path) -> None:
    client.cookies.clear()
    response = client.post(
        "/api/staff/login", json={"email": "staff@roles.example", "password": PASSWORD}
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here; over https it is Secure
    secure = client.post(
        "https://testserver/api/staff/login",
        json={"email": "staff@roles.example", "password": PASSWORD},
    )
    assert "secure" in secure.headers["set-cookie"].lower()
    client.cookies.clear()


def test_favicon_is_served(client: TestClient) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
