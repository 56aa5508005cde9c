"""The whole handoff journey against the real stack, on two gateways sharing Redis.

The live Rasa and action servers and the seeded database come from the `live_stack`
fixture; this module starts two more gateway processes on them with one Redis (a key
prefix of their own). The customer talks to gateway A, staff work on gateway B, and
gateway A is restarted in the middle of the handoff: nothing may be lost.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from tandem.business.profile import load_profile
from tandem.config import Settings
from tandem.conversations.models import Conversation, ConversationEvent, Message
from tandem.db import make_engine, session_scope
from tandem.run import Service, free_port, gateway_command, settings_env
from tandem.staff import service as staff_service
from tests.chat_client import WidgetTokens
from tests.conftest import LiveStack
from tests.handoff_fixtures import REDIS_URL, delete_prefix, redis_client

pytestmark = pytest.mark.rasa

ANGRY = [
    "Where is my order?? I have been waiting for three weeks, this is ridiculous!!!",
    "This is the WORST service ever. NOBODY ANSWERS MY EMAILS. I am furious!!!",
    "Useless bot. You people are terrible, I want my money back NOW!!!",
    "I am so angry, this is a complete scam and a disgrace!!!",
    "Absolutely pathetic. Worst shop I have ever dealt with!!!",
]


@dataclass
class Gateway:
    name: str
    settings: Settings
    service: Service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws")

    def start(self) -> None:
        self.service.start()
        self.service.wait_healthy(timeout=90)

    def stop(self) -> None:
        self.service.stop()


def make_gateway(name: str, base: Settings, prefix: str, logs: Path, port: int) -> Gateway:
    settings = base.model_copy(
        update={
            "gateway_port": port,
            "redis_url": REDIS_URL,
            "redis_prefix": prefix,
            "staff_hours": "always",
        }
    )
    service = Service(
        f"gateway {name}",
        gateway_command(settings),
        f"http://127.0.0.1:{port}/healthz",
        lambda r: r.status_code == 200,
        {**os.environ, **settings_env(settings)},
        logs / f"gateway-{name}.log",
    )
    return Gateway(name, settings, service)


@pytest.fixture(scope="module")
def gateways(live_stack: LiveStack) -> Iterator[tuple[Gateway, Gateway]]:
    import asyncio

    asyncio.run(_check_redis())
    prefix = f"tandem-journey-{uuid.uuid4().hex[:8]}:"
    logs = live_stack.state_dir / "logs"
    a = make_gateway("a", live_stack.settings, prefix, logs, free_port())
    b = make_gateway("b", live_stack.settings, prefix, logs, free_port())
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()
        asyncio.run(delete_prefix(prefix))


async def _check_redis() -> None:
    client = await redis_client()
    await client.aclose()


def receive(socket: ClientConnection, wanted: str, timeout: float = 30) -> dict[str, Any]:
    """The next frame of type `wanted` (others are skipped)."""
    while True:
        frame = json.loads(socket.recv(timeout=timeout))
        if frame.get("type") == wanted:
            return frame  # type: ignore[no-any-return]


def receive_message(socket: ClientConnection, text: str, timeout: float = 30) -> dict[str, Any]:
    while True:
        frame = receive(socket, "message", timeout)
        if frame["message"]["text"] == text:
            return frame


def test_handoff_journey_across_two_gateways(
    live_stack: LiveStack, gateways: tuple[Gateway, Gateway]
) -> None:
    a, b = gateways
    engine = make_engine(live_stack.database_url)
    email = f"journey-{uuid.uuid4().hex[:6]}@shop.example"
    with session_scope(engine) as session:
        staff_service.create_user(
            session, email=email, password="journey password", display_name="Sam"
        )

    tokens = WidgetTokens()
    customer = httpx.Client(base_url=a.url, timeout=60, auth=tokens)
    staff = httpx.Client(base_url=b.url, timeout=60)
    login = staff.post("/api/staff/login", json={"email": email, "password": "journey password"})
    assert login.status_code == 200, login.text
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    staff_id = login.json()["user"]["id"]
    cookie = {"Cookie": f"tandem_session={staff.cookies['tandem_session']}"}
    assert staff.put("/api/staff/presence", json={"state": "online"}, headers=csrf).is_success
    # Turns do not wait for a model that is still loading (their scores come late); this
    # journey is about escalating on sentiment, so it starts once the model is loaded.
    deadline = time.monotonic() + 120
    while customer.get("/healthz").json()["sentiment"] != "ok":
        assert time.monotonic() < deadline, "the sentiment model did not load"
        time.sleep(0.5)

    with connect(f"{b.ws_url}/ws/staff", additional_headers=cookie, open_timeout=10) as desk:
        assert receive(desk, "ready")["staff_id"] == staff_id

        # 1. An angry customer on gateway A escalates on sentiment, with the reasons stored.
        chat_id = customer.post("/api/conversations").json()["id"]
        for text in ANGRY:
            customer.post(f"/api/conversations/{chat_id}/messages", json={"text": text})
            if customer.get(f"/api/conversations/{chat_id}").json()["state"] != "bot":
                break
        assert customer.get(f"/api/conversations/{chat_id}").json()["state"] == "queued"
        with session_scope(engine) as session:
            escalation = session.scalars(
                select(ConversationEvent).where(
                    ConversationEvent.conversation_id == chat_id,
                    ConversationEvent.kind == "escalation",
                )
            ).one()
            reasons = escalation.data["reasons"]
            assert any("frustration" in r or "negative sentiment" in r for r in reasons), reasons
            scored = session.scalars(
                select(Message.sentiment_score).where(
                    Message.conversation_id == chat_id, Message.sender == "customer"
                )
            ).all()
            assert scored and all(score is not None and score < 0 for score in scored)

        # 2. Staff on gateway B hear of it (through Redis) and see it in the queue.
        announced = receive(desk, "escalation")
        assert announced["conversation_id"] == chat_id and announced["reasons"] == reasons
        queue = staff.get("/api/staff/queue").json()["queue"]
        # Other tests of the session may have left conversations queued in this database.
        [entry] = [e for e in queue if e["conversation_id"] == chat_id]
        assert entry["mood"]["frustration"] > 0

        with connect(f"{a.ws_url}/ws/chat/{chat_id}", open_timeout=10) as widget:
            widget.send(json.dumps(tokens.auth_frame(chat_id)))
            receive(widget, "ready")
            # 3. Claim on B; the customer on A is told.
            claim = staff.post(f"/api/staff/conversations/{chat_id}/claim", headers=csrf)
            assert claim.status_code == 200, claim.text
            joined = receive(widget, "message")
            assert joined["message"]["kind"] == "staff_joined"

            # 4. Messages both ways across the two processes.
            staff.post(
                f"/api/staff/conversations/{chat_id}/reply",
                json={"text": "Hi, I'm Sam. I'm so sorry, let me look into it."},
                headers=csrf,
            )
            receive_message(widget, "Hi, I'm Sam. I'm so sorry, let me look into it.")
            widget.send(json.dumps({"type": "message", "text": "Order 10482, thank you Sam"}))
            pushed = receive(desk, "customer_message")
            assert pushed["message"]["text"] == "Order 10482, thank you Sam"

        # 5. Gateway A restarts in the middle of the handoff: nothing is lost.
        a.stop()
        a.start()
        assert customer.get(f"/api/conversations/{chat_id}").json()["state"] == "with_staff"
        history = customer.get(f"/api/conversations/{chat_id}/messages").json()["messages"]
        texts = [m["text"] for m in history]
        assert "Hi, I'm Sam. I'm so sorry, let me look into it." in texts
        assert "Order 10482, thank you Sam" in texts
        after = customer.post(
            f"/api/conversations/{chat_id}/messages", json={"text": "Still there?"}
        ).json()
        assert after["message"]["status"] == "held" and after["replies"] == []
        assert receive(desk, "customer_message")["message"]["text"] == "Still there?"
        staff.post(
            f"/api/staff/conversations/{chat_id}/notes",
            json={"text": "INTERNAL: refund approved"},
            headers=csrf,
        )

        # 6. Back to the bot, which answers the next routine question correctly.
        back = staff.post(f"/api/staff/conversations/{chat_id}/return-to-bot", headers=csrf)
        assert back.status_code == 200, back.text
        answer = customer.post(
            f"/api/conversations/{chat_id}/messages", json={"text": "what are your opening hours?"}
        ).json()
        assert customer.get(f"/api/conversations/{chat_id}").json()["state"] == "bot"
        reply = "\n".join(r["text"] for r in answer["replies"])
        profile = load_profile(live_stack.settings.business_file)
        tuesday = profile.hours.for_weekday(1)
        assert tuesday is not None
        assert profile.format_time(tuesday.opens) in reply, reply
        with session_scope(engine) as session:
            asked = session.get_one(Message, answer["message"]["id"])
            assert asked.intent == "ask_hours"

        # 7. The customer asks for a person again; staff take it and close it; CSAT 5.
        customer.post(
            f"/api/conversations/{chat_id}/messages", json={"text": "can I talk to a person?"}
        )
        assert customer.get(f"/api/conversations/{chat_id}").json()["state"] == "queued"
        assert staff.post(f"/api/staff/conversations/{chat_id}/claim", headers=csrf).is_success
        closed = staff.post(
            f"/api/staff/conversations/{chat_id}/close",
            json={"resolution": "Refunded order 10482"},
            headers=csrf,
        )
        assert closed.status_code == 200, closed.text
        rated = customer.post(f"/api/conversations/{chat_id}/csat", json={"score": 5})
        assert rated.status_code == 200, rated.text

    history = customer.get(f"/api/conversations/{chat_id}/messages").json()["messages"]
    assert not any("INTERNAL" in m["text"] for m in history)
    assert history[-1]["kind"] == "csat_request"
    with session_scope(engine) as session:
        stored = session.get_one(Conversation, chat_id)
        assert (stored.state, stored.csat, stored.resolution) == (
            "closed",
            5,
            "Refunded order 10482",
        )
        moves = session.scalars(
            select(ConversationEvent.to_state)
            .where(
                ConversationEvent.conversation_id == chat_id,
                ConversationEvent.kind == "state_changed",
            )
            .order_by(ConversationEvent.id)
        ).all()
        assert moves == ["queued", "with_staff", "bot", "queued", "with_staff", "closed"]
    customer.close()
    staff.close()
    engine.dispose()
