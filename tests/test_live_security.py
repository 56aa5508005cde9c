"""Issue 12 findings 1 and 3 on the live stack (real Rasa, action server and gateway):
the internal services listen on loopback only and refuse callers without their tokens,
Rasa's REST channel is off, the actions believe only signed identities, and the stack's
files are owner-only."""

from __future__ import annotations

import stat
import uuid
from typing import Any

import httpx
import pytest
from test_internal_services import LOOPBACK, listening_addresses, made_up_tracker_call

from handoff.identity import rasa_identity_metadata
from tandem.run import port_of

pytestmark = pytest.mark.rasa


def test_rasa_and_the_action_server_listen_on_loopback_only(live_stack: Any) -> None:
    settings = live_stack.settings
    for url in (settings.rasa_url, settings.action_server_url):
        addresses = listening_addresses(port_of(url))
        assert addresses and addresses <= LOOPBACK, (url, addresses)


def test_rasa_http_api_requires_the_token(live_stack: Any) -> None:
    """Finding 3: GET /conversations/{id}/tracker returned a transcript to anyone."""
    settings = live_stack.settings
    rasa = httpx.Client(base_url=settings.rasa_url, timeout=30)
    token = {"token": settings.rasa_auth_token}
    assert rasa.get("/conversations/someone/tracker").status_code == 401
    assert rasa.get("/conversations/someone/tracker", params={"token": "wrong"}).status_code == 401
    injected = [{"event": "slot", "name": "verified_customer_id", "value": 1}]
    assert rasa.post("/conversations/someone/tracker/events", json=injected).status_code == 401
    assert rasa.get("/status").status_code == 401
    assert rasa.get("/conversations/someone/tracker", params=token).status_code == 200


def test_rest_channel_is_off_and_the_tandem_channel_needs_the_token(live_stack: Any) -> None:
    settings = live_stack.settings
    rasa = httpx.Client(base_url=settings.rasa_url, timeout=60)
    claim = {"sender": "someone", "message": "hi", "metadata": {"verified": True, "customer_id": 1}}
    assert rasa.post("/webhooks/rest/webhook", json=claim).status_code == 404
    assert rasa.post("/webhooks/tandem/webhook", json=claim).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert rasa.post("/webhooks/tandem/webhook", json=claim, headers=wrong).status_code == 401


def test_action_server_refuses_a_made_up_tracker(live_stack: Any) -> None:
    """Finding 1: POST /webhook with `verified: true` returned customer 7's orders."""
    url = live_stack.settings.action_server_url
    response = httpx.post(
        url + "/webhook", json=made_up_tracker_call("action_order_status"), timeout=30
    )
    assert response.status_code == 401
    assert httpx.get(url + "/health", timeout=10).status_code == 200


def ask(live_stack: Any, sender: str, text: str, metadata: dict[str, Any]) -> str:
    settings = live_stack.settings
    response = httpx.post(
        settings.rasa_url + "/webhooks/tandem/webhook",
        json={"sender": sender, "message": text, "metadata": metadata},
        headers={"Authorization": f"Bearer {settings.rasa_auth_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return " | ".join(m.get("text") or "" for m in response.json()["messages"])


def test_actions_believe_only_the_gateways_signature(live_stack: Any) -> None:
    """Through real Rasa and the real action server: a plain claim lists nothing; the
    metadata the gateway signs (handoff.identity.rasa_identity_metadata) lists the orders."""
    secret = live_stack.settings.identity_secret
    claimed = f"probe-{uuid.uuid4().hex[:8]}"
    said = ask(live_stack, claimed, "where is my order?", {"verified": True, "customer_id": 1})
    assert "#10001" not in said and "#10002" not in said
    signed = f"probe-{uuid.uuid4().hex[:8]}"
    metadata = rasa_identity_metadata(secret, signed, 1, True)
    said = ask(live_stack, signed, "where is my order?", metadata)
    assert "#10001" in said or "#10002" in said, said
    # The signature is for that conversation only.
    other = f"probe-{uuid.uuid4().hex[:8]}"
    said = ask(live_stack, other, "where is my order?", metadata)
    assert "#10001" not in said and "#10002" not in said


def test_the_stacks_files_are_owner_only(live_stack: Any) -> None:
    """Finding 10: databases and logs under var/ were world-readable."""
    for path in [live_stack.state_dir, *live_stack.state_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
