"""Issue 12: the chat page at / had an inline script and no CSP; /docs loaded Swagger UI
from a CDN (blank without internet). The rendering itself is checked in Chromium
(tests/browser/test_pages_offline.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from tandem.config import Settings
from tandem.db import migrate
from tandem.run import free_port

PAGES = ("/", "/demo", "/staff", "/owner", "/docs")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    settings = Settings(
        database_url=url, rasa_url=f"http://127.0.0.1:{free_port()}", sentiment_enabled=False
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_page_has_the_same_csp_and_no_inline_script(client: TestClient) -> None:
    policies = set()
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        policies.add(response.headers["content-security-policy"])
        assert response.headers["x-frame-options"] == "DENY"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
        assert scripts, path
        for attributes, body in scripts:
            assert 'src="/' in attributes and not body.strip(), f"inline script on {path}"
    assert len(policies) == 1
    assert "script-src 'self'" in policies.pop()


def test_docs_use_no_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "http" not in page  # every asset comes from the gateway itself
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text[:2000]
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2Fcore.py").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Tandem gateway"
