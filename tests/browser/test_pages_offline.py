"""Issue 12: /docs renders with no internet (Swagger UI from a package, no CDN), and the
chat page at / runs under the same CSP as the other pages (its script is a file).

A gateway alone is enough here (no Rasa): it is started with uvicorn on a seeded SQLite
database, and the browser may reach nothing but that gateway."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tandem.db import migrate
from tandem.run import Service, free_port, seed_demo_database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("offline")
    url = f"sqlite:///{state / 'tandem.db'}"
    migrate(url)
    seed_demo_database(url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nobody there
        "SENTIMENT_ENABLED": "false",
        "STATE_DIR": str(state),
    }
    command = [sys.executable, "-m", "uvicorn", "bot.app:create_app", "--factory"]
    base = f"http://127.0.0.1:{port}"
    gateway = Service(
        "gateway",
        [*command, "--port", str(port), "--no-access-log"],
        base + "/healthz",
        lambda r: r.status_code == 200,
        env,
        state / "gateway.log",
    )
    gateway.start()
    try:
        gateway.wait_healthy(timeout=60)
        yield base
    finally:
        gateway.stop()


def offline_page(browser: Any, base: str) -> tuple[Any, list[str], list[str]]:
    """A page that can reach only the gateway; returns it with the URLs it tried
    elsewhere and the console's CSP complaints."""
    context = browser.new_context(base_url=base)
    outside: list[str] = []

    def route(request_route: Any) -> None:
        if request_route.request.url.startswith(base):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, outside, complaints


def test_docs_render_offline(browser: Any, gateway: str) -> None:
    page, outside, complaints = offline_page(browser, gateway)
    response = page.goto("/docs")
    assert response is not None and response.ok
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.locator(".swagger-ui .info .title").wait_for(timeout=20_000)
    assert "Tandem gateway" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock").first.wait_for(timeout=20_000)
    assert page.locator(".opblock").count() > 10
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/conversations" in p for p in paths)
    assert outside == [] and complaints == []
    page.context.close()


def test_chat_page_script_runs_under_the_csp(browser: Any, gateway: str) -> None:
    page, outside, complaints = offline_page(browser, gateway)
    response = page.goto("/")
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    business = httpx.get(gateway + "/api/business", timeout=10).json()
    # The header is filled in by /static/chat.js: the script ran.
    page.wait_for_function(
        "name => document.getElementById('title').textContent === name",
        arg=business["name"],
        timeout=20_000,
    )
    # It started a conversation and keeps its id and token (the page's own store).
    page.wait_for_function("() => localStorage.getItem('tandem.chat')", timeout=20_000)
    assert outside == [] and complaints == []
    page.context.close()
