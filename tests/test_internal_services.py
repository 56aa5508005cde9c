"""Issue 12, findings 1-3: the actions trust only signed identities, the action server
and Rasa require tokens and listen on loopback, and secrets are never the public demo
value (generated into the state directory, owner-only)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest_business import actions_env, business_engine, profile
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from test_actions import make_tracker, run, texts

from actions.orders import ActionCancelOrder, ActionOrderStatus, ValidateOrderStatusForm
from handoff.identity import (
    rasa_identity_metadata,
    sign_conversation_identity,
    sign_identity,
    verify_conversation_identity,
)
from tandem.business.models import Order
from tandem.config import DEMO_IDENTITY_SECRET, Settings, get_settings
from tandem.run import Service, free_port

__all__ = ["actions_env", "business_engine", "profile"]  # fixtures used below

# ----------------------------------------------------------------- signed identity


def test_conversation_identity_is_bound_to_conversation_and_customer() -> None:
    signature = sign_conversation_identity("s3cret", "conv-1", 7)
    assert verify_conversation_identity("s3cret", "conv-1", 7, signature) == 7
    assert verify_conversation_identity("s3cret", "conv-1", 7.0, signature.upper()) == 7
    assert verify_conversation_identity("s3cret", "conv-2", 7, signature) is None
    assert verify_conversation_identity("s3cret", "conv-1", 8, signature) is None
    assert verify_conversation_identity("other", "conv-1", 7, signature) is None
    assert verify_conversation_identity("s3cret", "conv-1", True, signature) is None
    assert verify_conversation_identity("s3cret", "conv-1", "7", signature) is None
    assert verify_conversation_identity("s3cret", "conv-1", 7, None) is None
    # The widget's signature format can never pass for a conversation identity.
    widget = sign_identity("conv-1", "s3cret", 7)
    assert verify_conversation_identity("s3cret", "conv-1", 7, widget) is None


def test_rasa_identity_metadata_signs_only_verified_customers() -> None:
    verified = rasa_identity_metadata("s3cret", "conv-1", 7, True)
    assert verified["verified"] is True
    assert verified["identity_signature"] == sign_conversation_identity("s3cret", "conv-1", 7)
    hint = rasa_identity_metadata("s3cret", "conv-1", 7, False)
    assert hint == {"conversation_id": "conv-1", "customer_id": 7, "verified": False}
    assert "identity_signature" not in rasa_identity_metadata("s3cret", "conv-1", None, True)


# ----------------------------------------------------------------- the actions


@pytest.mark.usefixtures("actions_env")
async def test_made_up_verified_metadata_lists_no_orders() -> None:
    """Finding 1: `verified: true` from the caller listed customer 1's orders."""
    for metadata in (
        {"verified": True, "customer_id": 1},
        # signed, but for another conversation (the tracker's sender id is "test")
        rasa_identity_metadata(get_settings().identity_secret, "another", 1, True),
        # signed with the public demo secret
        rasa_identity_metadata(DEMO_IDENTITY_SECRET, "test", 1, True),
    ):
        messages, _ = await run(ActionOrderStatus(), make_tracker("", metadata=metadata))
        assert "#10001" not in texts(messages)
        tracker = make_tracker("where is my order", metadata=metadata, form="order_status_form")
        slots = await ValidateOrderStatusForm().required_slots([], None, tracker, {})  # type: ignore[arg-type]
        assert slots == ["order_number", "order_email"]  # the e-mail is still asked for
    signed = rasa_identity_metadata(get_settings().identity_secret, "test", 1, True)
    messages, _ = await run(ActionOrderStatus(), make_tracker("", metadata=signed))
    assert "#10001" in texts(messages)


async def test_injected_verified_slot_reveals_and_cancels_nothing(actions_env: Engine) -> None:
    """Finding 1/3: slots `order_number` + `verified_customer_id` returned carrier, tracking
    number and items, and `action_cancel_order` ran the same way."""
    injected = {"order_number": "10003", "verified_customer_id": 2.0}
    messages, _ = await run(ActionOrderStatus(), make_tracker("", slots=injected))
    assert "MMC-" not in texts(messages) and "courier" not in texts(messages)
    pending = {"order_number": "10001", "verified_customer_id": 1.0, "cancel_confirmed": True}
    messages, _ = await run(ActionCancelOrder(), make_tracker("yes", slots=pending))
    assert messages == []
    with Session(actions_env) as session:
        order = session.scalar(select(Order).where(Order.number == "10001"))
        assert order is not None and order.status == "pending"


@pytest.mark.usefixtures("actions_env")
async def test_our_own_lookup_leaves_a_signed_note_that_verifies_the_slot() -> None:
    """A matching e-mail verifies the customer for the rest of the turn (slot + note)."""
    dispatcher_messages, slots = await run(
        ActionOrderStatus(),
        make_tracker(
            "", slots={"order_number": "10003", "order_email": "marcus.reyes@example.com"}
        ),
    )
    assert slots["verified_customer_id"] == 2.0
    (identified,) = [m for m in dispatcher_messages if m.get("custom")]
    note = identified["tandem_identity"]
    assert note["customer_id"] == 2
    # As Rasa keeps it: the message's extra keys become the BotUttered event's metadata.
    history: list[dict[str, Any]] = [
        {"event": "bot", "text": None, "metadata": {"tandem_identity": note}}
    ]
    follow_up = make_tracker(
        "", slots={"order_number": "10003", "verified_customer_id": 2.0}, history=history
    )
    messages, _ = await run(ActionOrderStatus(), follow_up)
    assert "MMC-" in texts(messages)
    # The same note does not vouch for another customer in the slot.
    other = make_tracker(
        "", slots={"order_number": "10004", "verified_customer_id": 3.0}, history=history
    )
    messages, _ = await run(ActionOrderStatus(), other)
    assert "1ZJ5SZ" not in texts(messages)


# ----------------------------------------------------------------- secrets


def test_demo_secret_is_refused_unless_allowed(tmp_path: Path) -> None:
    """Finding 2: the public demo IDENTITY_SECRET was the default."""
    with pytest.raises(ValueError, match="public demo value"):
        Settings(state_dir=tmp_path, identity_secret=DEMO_IDENTITY_SECRET)
    allowed = Settings(
        state_dir=tmp_path, identity_secret=DEMO_IDENTITY_SECRET, allow_demo_secret=True
    )
    assert allowed.identity_secret == DEMO_IDENTITY_SECRET


def test_unset_secrets_are_generated_once_into_private_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IDENTITY_SECRET", "RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "var"
    first = Settings(state_dir=state)
    again = Settings(state_dir=state)
    secrets_dir = state / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for name in ("identity_secret", "rasa_auth_token", "action_server_token"):
        value = getattr(first, name)
        assert len(value) >= 40 and value != DEMO_IDENTITY_SECRET
        assert getattr(again, name) == value  # kept across restarts
        path = secrets_dir / name
        assert path.read_text().strip() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({first.identity_secret, first.rasa_auth_token, first.action_server_token}) == 3
    # A value from the environment wins and writes nothing.
    monkeypatch.setenv("IDENTITY_SECRET", "from-the-environment")
    assert Settings(state_dir=tmp_path / "other").identity_secret == "from-the-environment"
    assert not (tmp_path / "other" / "secrets" / "identity_secret").exists()


def test_demo_secret_warning_covers_sqlite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 2: the start-up warning was skipped for SQLite."""
    from bot.app import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'tandem.db'}",
        identity_secret=DEMO_IDENTITY_SECRET,
        allow_demo_secret=True,
        sentiment_enabled=False,
    )
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        create_app(settings)
    assert any("public demo value" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------- the action server


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def made_up_tracker_call(action: str) -> dict[str, Any]:
    """The probe's request: a tracker invented by the caller, claiming customer 1."""
    return {
        "next_action": action,
        "sender_id": "probe",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "probe",
            "slots": {"order_number": "10001", "verified_customer_id": 1.0},
            "latest_message": {"text": "", "metadata": {"verified": True, "customer_id": 1}},
            "events": [],
            "active_loop": {},
        },
    }


@pytest.fixture
def action_server(actions_env: Engine, tmp_path: Path) -> Any:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Service(
        "action server",
        [sys.executable, "-m", "actions.server", "--port", str(port)],
        url + "/health",
        lambda r: r.status_code == 200,
        {**os.environ, "ACTION_SERVER_TOKEN": "the-right-token"},
        tmp_path / "actions.log",
    )
    server.start()
    try:
        server.wait_healthy(timeout=60)
        yield url, port
    finally:
        server.stop()


def test_action_server_requires_the_token_and_listens_on_loopback(
    action_server: tuple[str, int],
) -> None:
    """Finding 1: 0.0.0.0:5055 ran any action for anyone."""
    url, port = action_server
    assert listening_addresses(port) and listening_addresses(port) <= LOOPBACK
    call = made_up_tracker_call("action_order_status")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "the-right-token"}):
        response = httpx.post(url + "/webhook", json=call, headers=headers, timeout=10)
        assert response.status_code == 401
        assert "10001" not in response.text
    assert httpx.get(url + "/actions", timeout=10).status_code == 401
    # With the token (as Rasa calls it) the made-up identity is still not believed.
    response = httpx.post(
        url + "/webhook",
        json=call,
        headers={"Authorization": "Bearer the-right-token"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "#10001" not in response.text and "#10002" not in response.text


@pytest.mark.parametrize("token", ["-starts-with-a-dash", "plain_token_123", "--double"])
def test_rasa_reads_the_whole_token_whatever_its_first_character(token: str) -> None:
    """A generated token began with "-" and `rasa run --auth-token -X...` refused to start
    (CI, stop 16): Rasa's own argument parser must read every token as the token."""
    from tandem.rasa_model import rasa_executable

    python = rasa_executable().with_name("python")
    program = (
        "import argparse, json, sys\n"
        "from rasa.cli import run\n"
        "sys.path.insert(0, '.')\n"
        "from bot.rasa_launch import rasa_argv\n"
        "parser = argparse.ArgumentParser()\n"
        "run.add_subparser(parser.add_subparsers(), parents=[])\n"
        "args = parser.parse_args(rasa_argv(['--enable-api', '--port', '5005'], sys.argv[1])[1:])\n"
        "print(json.dumps({'token': args.auth_token, 'port': args.port}))\n"
    )
    result = subprocess.run(
        [str(python), "-c", program, token],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"token": token, "port": 5005}
