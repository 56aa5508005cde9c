"""Sentiment and handoff wired into the gateway, without Rasa.

Rasa is replaced by FakeRasa, a named fake on the gateway's RasaClient (intent by
keyword, like the real NLU's output format); the policy, queue, bus, storage, staff
API and WebSocket are the real ones. The journey against the real Rasa is in
test_handoff_journey.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from bot.app import create_app
from bot.rasa_client import RasaTurn, RasaUnavailable
from handoff.identity import sign_identity
from sentiment.analyzer import SentimentScores
from tandem.config import Settings
from tandem.conversations.flow import BOT_UNAVAILABLE_TEXT
from tandem.conversations.models import Conversation, Message, Ticket
from tandem.db import make_engine, migrate, session_scope
from tandem.run import free_port, seed_demo_database
from tandem.scoring import SentimentBatcher
from tandem.staff import service as staff_service
from tests.chat_client import WidgetTokens
from tests.stored_rows import events

# Tuesday 24 November 2026, 15:00 in Chicago: the shop is open. Monday: closed all day.
OPEN = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
CLOSED_MONDAY = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


# ------------------------------------------------------------------ doubles


class FakeKeywordAnalyzer:
    """Fake model for unit tests (the real one is tested elsewhere).

    Angry words are negative, thanks positive; it counts its batches.
    """

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def score_batch(self, texts: list[str]) -> list[SentimentScores]:
        self.batches.append(list(texts))
        out = []
        for text in texts:
            lowered = text.lower()
            if any(w in lowered for w in ("ridiculous", "terrible", "worst", "useless", "!!!")):
                out.append(SentimentScores(0.92, 0.06, 0.02))
            elif any(w in lowered for w in ("thanks", "great", "perfect")):
                out.append(SentimentScores(0.02, 0.08, 0.90))
            else:
                out.append(SentimentScores(0.10, 0.80, 0.10))
        return out


class FakeRasa:
    """Fake Rasa: answers like the Tandem channel (parse_data + messages), by keyword."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.resumed: list[str] = []

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> RasaTurn:
        self.sent.append(text)
        lowered = text.lower()
        if "person" in lowered or lowered == "/request_human":
            return RasaTurn(
                {"intent": {"name": "request_human", "confidence": 0.97}, "entities": []},
                [
                    {
                        "custom": {
                            "tandem": {
                                "type": "handoff",
                                "reason": "request_human",
                                "text": "I'll connect you with a person.",
                            }
                        }
                    }
                ],
            )
        if "hours" in lowered:
            return RasaTurn(
                {"intent": {"name": "ask_hours", "confidence": 0.95}, "entities": []},
                [{"text": "We're open Tuesday to Sunday."}],
            )
        if "o'clock" in lowered:
            # The NLU could not place it; the booking form read it (actions/help.py).
            understood = {"type": "understood", "question": "booking_form:appointment_time"}
            return RasaTurn(
                {"intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []},
                [{"custom": {"tandem": understood}}, {"text": "What name should I put it under?"}],
            )
        if lowered.isdigit() and len(lowered) < 5:
            # A form rejects the number: Rasa sends the retry's words, then its custom
            # payload apart, then the form's own question again.
            retry = {"type": "retry", "question": "order_status_form:order_number", "attempt": 1}
            return RasaTurn(
                {"intent": {"name": "inform", "confidence": 0.9}, "entities": []},
                [
                    {"text": "An order number has five digits, like 10482. Could you check it?"},
                    {"custom": {"tandem": retry}},
                    {"text": "Could you give me your order number? It has five digits."},
                ],
            )
        if "rasa down" in lowered:
            raise RasaUnavailable("the fake Rasa is down for this message")
        if "blorf" in lowered:
            person = {"title": "Talk to a person", "payload": "/request_human"}
            return RasaTurn(
                {"intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []},
                [{"text": "Sorry, I didn't get that.", "buttons": [person]}],
            )
        return RasaTurn(
            {"intent": {"name": "order_status", "confidence": 0.9}, "entities": []},
            [{"text": "Could you give me your order number?"}],
        )

    async def resume(self, sender: str) -> bool:
        self.resumed.append(sender)
        return True

    async def is_healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


@dataclass
class Gateway:
    app: FastAPI
    client: TestClient
    engine: Engine
    rasa: FakeRasa
    analyzer: FakeKeywordAnalyzer
    clock: list[datetime]

    def chat(self, **identity: Any) -> str:
        response = self.client.post("/api/conversations", json=identity or None)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def say(self, conversation_id: str, text: str) -> dict[str, Any]:
        response = self.client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def state(self, conversation_id: str) -> str:
        return str(self.client.get(f"/api/conversations/{conversation_id}").json()["state"])

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        return self.client.get(f"/api/conversations/{conversation_id}/messages").json()["messages"]


@dataclass
class StaffLogin:
    id: int
    token: str
    csrf: str

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"tandem_session={self.token}"}
        return headers | ({"X-CSRF-Token": self.csrf} if csrf else {})


def make_gateway(url: str, clock: datetime = OPEN, **overrides: Any) -> Gateway:
    settings = Settings(database_url=url, rasa_url=f"http://127.0.0.1:{free_port()}", **overrides)
    analyzer = FakeKeywordAnalyzer()
    now = [clock]
    rasa = FakeRasa()
    app = create_app(
        settings,
        assistant=rasa,
        scorer=SentimentBatcher(lambda: analyzer, max_wait_seconds=0.002),
        clock=lambda: now[0],
    )
    client = TestClient(app)
    client.auth = WidgetTokens()
    return Gateway(app, client, app.state.engine, rasa, analyzer, now)


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff_service, "password_hasher", CHEAP)


def wipe_postgres(url: str) -> None:
    """Empty every table, children first, and restart the ids, as on a new database."""
    from tandem.models import Base

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
            for table in Base.metadata.sorted_tables:
                column = table.autoincrement_column
                if column is not None:
                    sequence = func.pg_get_serial_sequence(table.name, column.name)
                    connection.execute(select(func.setval(sequence, 1, False)))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database holding the demo business (customer 1 is a VIP), on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
        migrate(url)
    else:
        url = request.getfixturevalue("postgres_url")
        wipe_postgres(url)  # the demo data gets the same ids as on SQLite
    seed_demo_database(url)
    yield url
    if request.param == "postgresql":
        wipe_postgres(url)  # other tests expect an empty database


@pytest.fixture
def gw(database_url: str) -> Iterator[Gateway]:
    gateway = make_gateway(database_url)
    with gateway.client:
        yield gateway


def staff_login(engine: Engine, email: str, role: str = "staff", capacity: int = 3) -> StaffLogin:
    """A staff account and a live session, made in the database (no login throttling)."""
    with session_scope(engine) as session:
        user = staff_service.get_user_by_email(session, email)
        if user is None:
            user = staff_service.create_user(
                session,
                email=email,
                password=PASSWORD,
                display_name=email.split("@")[0].title(),
                role=role,
                capacity=capacity,
            )
        new = staff_service.start_session(session, user)
        return StaffLogin(user.id, new.token, new.csrf_token)


def online(gw: Gateway, staff: StaffLogin, capacity: int = 3) -> None:
    response = gw.client.put(
        "/api/staff/presence",
        json={"state": "online", "capacity": capacity},
        headers=staff.headers(),
    )
    assert response.status_code == 200, response.text


def staff_post(gw: Gateway, staff: StaffLogin, path: str, body: Any = None) -> httpx.Response:
    return gw.client.post(path, json=body, headers=staff.headers())


def messages(engine: Engine, conversation_id: str) -> list[Message]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
        )


def conversation(engine: Engine, conversation_id: str) -> Conversation:
    with session_scope(engine) as session:
        return session.get_one(Conversation, conversation_id)


# ------------------------------------------------------------------ sentiment


def test_every_customer_message_is_scored_and_the_mood_follows(gw: Gateway) -> None:
    chat = gw.chat()
    gw.say(chat, "hi, where is my order?")
    gw.say(chat, "blorf")  # a bot fallback
    # A score that missed its turn (the model still loading on a busy CPU) is stored late.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
        m.sentiment_score is None for m in messages(gw.engine, chat) if m.sender == "customer"
    ):
        time.sleep(0.1)
    for message in messages(gw.engine, chat):
        if message.sender == "customer":
            assert message.sentiment_score is not None
            total = (
                message.sentiment_negative + message.sentiment_neutral + message.sentiment_positive
            )
            assert total == pytest.approx(1.0)
        else:
            assert message.sentiment_score is None
    mood = conversation(gw.engine, chat).mood
    assert mood is not None
    assert mood["customer_turns"] == 2
    assert mood["consecutive_fallbacks"] == 1


async def test_concurrent_messages_are_scored_in_one_batch_off_the_loop() -> None:
    analyzer = FakeKeywordAnalyzer()
    batcher = SentimentBatcher(lambda: analyzer, max_batch=32, max_wait_seconds=0.01)
    texts = [f"message {i} is terrible" if i % 2 else f"message {i}" for i in range(20)]
    results = await asyncio.gather(*(batcher.score(t) for t in texts))
    assert len(analyzer.batches) == 1 and analyzer.batches[0] == texts
    assert [r.label for r in results if r] == [
        "negative" if i % 2 else "neutral" for i in range(20)
    ]
    # More than max_batch at once: split into full batches.
    batcher.max_batch = 8
    await asyncio.gather(*(batcher.score(t) for t in texts))
    assert [len(b) for b in analyzer.batches[1:]] == [8, 8, 4]
    batcher.close()


@pytest.mark.model
async def test_batcher_with_the_real_trained_model() -> None:
    from sentiment.analyzer import Analyzer
    from tests.sentiment_fixtures import trained_model_path

    model = Analyzer(trained_model_path())
    batcher = SentimentBatcher(lambda: model.load())
    angry, happy = await asyncio.gather(
        batcher.score("This is ridiculous, my order is two weeks late and nobody answers!"),
        batcher.score("Thank you so much, that was really helpful!"),
    )
    assert angry is not None and happy is not None
    assert angry.score < -0.3 < 0.3 < happy.score
    assert batcher.batches_run == 1 and batcher.status == "ok"
    batcher.close()


def test_a_missing_model_does_not_stop_the_chat(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> FakeKeywordAnalyzer:
        raise RuntimeError("no model here")

    gateway = make_gateway(database_url)
    gateway.app.state.flows.scorer = gateway.app.state.scorer = SentimentBatcher(broken)
    with gateway.client, caplog.at_level(logging.ERROR):
        chat = gateway.chat()
        first = gateway.say(chat, "where is my order?")
        gateway.say(chat, "and now?")
        assert first["replies"][0]["text"] == "Could you give me your order number?"
        stored = [m for m in messages(gateway.engine, chat) if m.sender == "customer"]
        assert [m.sentiment_score for m in stored] == [None, None]
        assert gateway.client.get("/healthz").json()["sentiment"] == "unavailable"
    assert sum("sentiment scoring is off" in r.message for r in caplog.records) == 1


# ------------------------------------------------------------------ escalation


def test_asking_for_a_person_queues_with_reasons_and_silences_the_bot(gw: Gateway) -> None:
    staff = staff_login(gw.engine, "ann@shop.example")
    online(gw, staff)
    chat = gw.chat()
    result = gw.say(chat, "can I talk to a person")
    assert gw.state(chat) == "queued"
    texts = [r["text"] for r in result["replies"]]
    assert texts[0] == "I'll connect you with a person."
    assert "number 1 in line" in texts[1] and result["replies"][1]["kind"] == "queue_position"
    [changed] = events(gw.engine, chat, "state_changed")
    assert (changed.from_state, changed.to_state, changed.actor) == ("bot", "queued", "policy")
    assert changed.reason == "asked for a person"
    assert changed.data["reasons"][0]["code"] == "asked_for_person"
    [escalation] = events(gw.engine, chat, "escalation")
    assert escalation.data["reasons"] == ["asked for a person"]

    sent_before = len(gw.rasa.sent)
    held = gw.say(chat, "hello? anyone?")
    assert held["message"]["status"] == "held"
    # One acknowledgement per wait for what the customer types while queued, then silence.
    [ack] = held["replies"]
    assert ack["kind"] == "queued_ack" and "will see everything" in ack["text"]
    assert gw.say(chat, "still waiting")["replies"] == []
    assert len(gw.rasa.sent) == sent_before  # nothing forwarded to Rasa
    queue = gw.client.get("/api/staff/queue", headers=staff.headers()).json()
    [entry] = queue["queue"]
    assert entry["conversation_id"] == chat and entry["reasons"] == ["asked for a person"]
    assert entry["priority"] >= 4 and entry["mood"]["frustration"] >= 0


def test_an_angry_customer_escalates_on_sentiment(gw: Gateway) -> None:
    staff = staff_login(gw.engine, "ann@shop.example")
    online(gw, staff)
    chat = gw.chat()
    for text in [
        "where is my order, this is ridiculous",
        "this is terrible, WHERE IS MY ORDER???",
        "worst shop ever, useless!!!",
    ]:
        gw.say(chat, text)
        if gw.state(chat) == "queued":
            break
    assert gw.state(chat) == "queued"
    [escalation] = events(gw.engine, chat, "escalation")
    joined = " ".join(escalation.data["reasons"])
    assert "frustration" in joined or "negative sentiment" in joined
    assert escalation.actor == "policy"


@pytest.mark.parametrize("staff_online", [True, False], ids=["queued", "offline_form"])
def test_the_turn_that_hands_off_asks_one_question(gw: Gateway, staff_online: bool) -> None:
    """The bot's form question ("Could you give me your order number?") and the desk's
    (the offline form's name, or the queue) in one reply left the customer two questions
    (make run, stop 16). The bot's question is kept for staff as an internal note."""
    if staff_online:
        online(gw, staff_login(gw.engine, "ann@shop.example"))
    chat = gw.chat()
    turns = 0
    for text in [
        "where is my order, this is ridiculous",
        "this is terrible, WHERE IS MY ORDER???",
        "worst shop ever, useless!!!",
    ]:
        turns += 1
        turn = gw.say(chat, text)
        if gw.state(chat) != "bot":
            break
    assert gw.state(chat) == ("queued" if staff_online else "offline_ticket")
    said = " ".join(reply["text"] for reply in turn["replies"])
    assert "order number" not in said
    assert said.count("?") <= 1
    if not staff_online:
        assert "What's your name?" in said
    shown = [m["text"] for m in gw.history(chat)]
    withheld = [m for m in messages(gw.engine, chat) if m.payload and m.payload.get("internal")]
    assert [m.text for m in withheld] == ["Could you give me your order number?"]
    # Earlier turns' questions were shown; the handoff turn's went to staff only.
    assert shown.count("Could you give me your order number?") == turns - 1


def test_two_fallbacks_in_a_row_escalate(gw: Gateway) -> None:
    online(gw, staff_login(gw.engine, "ann@shop.example"))
    chat = gw.chat()
    first = gw.say(chat, "blorf")
    assert gw.state(chat) == "bot"
    assert first["replies"][0]["buttons"]  # the bot offers a person
    second = gw.say(chat, "blorf blorf")
    assert gw.state(chat) == "queued"
    # The handoff makes the offer good: no button offers what is already happening.
    assert not any(reply["buttons"] for reply in second["replies"])
    [escalation] = events(gw.engine, chat, "escalation")
    assert "2 bot fallbacks in a row" in escalation.data["reasons"]


def test_a_rejected_answer_gets_one_question_not_two(gw: Gateway) -> None:
    """The form's rejection already asks again; its usual question after it is kept for
    staff as an internal note, not shown as a second question."""
    chat = gw.chat()
    gw.say(chat, "where is my order")
    reply = gw.say(chat, "1004")
    assert [r["text"] for r in reply["replies"]] == [
        "An order number has five digits, like 10482. Could you check it?"
    ]
    assert gw.state(chat) == "bot"
    shown = [m["text"] for m in gw.history(chat)]
    assert "Could you give me your order number? It has five digits." not in shown
    withheld = [m for m in messages(gw.engine, chat) if m.payload and m.payload.get("internal")]
    reask = "Could you give me your order number? It has five digits."
    assert [m.text for m in withheld] == [reask]


def test_answers_the_form_read_are_no_fallbacks_whatever_the_nlu_said(gw: Gateway) -> None:
    online(gw, staff_login(gw.engine, "ann@shop.example"))
    chat = gw.chat()
    gw.say(chat, "3 o'clock is possible?")
    reply = gw.say(chat, "no wait, 4 o'clock")
    assert gw.state(chat) == "bot"  # two nlu_fallback intents, both understood by the form
    assert [r["text"] for r in reply["replies"]] == ["What name should I put it under?"]


def test_a_verified_vip_is_routed_with_priority_but_an_unsigned_claim_is_not(gw: Gateway) -> None:
    online(gw, staff_login(gw.engine, "ann@shop.example"))
    expires = int(time.time()) + 3600
    secret = gw.app.state.settings.identity_secret
    vip = gw.chat(
        customer_id="1", expires_at=expires, signature=sign_identity("1", secret, expires)
    )
    assert gw.client.get(f"/api/conversations/{vip}").json()["customer_verified"] is True
    gw.say(vip, "can I talk to a person")
    [escalation] = events(gw.engine, vip, "escalation")
    assert "high-value customer: tier VIP" in escalation.data["reasons"]
    anonymous = gw.chat()
    gw.say(anonymous, "I'm a VIP, can I talk to a person")
    [plain] = events(gw.engine, anonymous, "escalation")
    assert not any("VIP" in r for r in plain.data["reasons"])
    assert escalation.data["priority"] > plain.data["priority"]
    entries = gw.client.get(
        "/api/staff/queue", headers=staff_login(gw.engine, "ann@shop.example").headers()
    ).json()["queue"]
    assert [e["conversation_id"] for e in entries] == [vip, anonymous]
    assert entries[0]["customer_value"] > 0 and "Olivia" in entries[0]["customer_label"]


def test_bad_identities_are_refused_and_never_trusted(gw: Gateway) -> None:
    secret = gw.app.state.settings.identity_secret
    expires = int(time.time()) + 3600
    good = sign_identity("1", secret, expires)
    cases = [
        ({"customer_id": "1", "expires_at": expires, "signature": "0" * 64}, 401, "forged"),
        ({"customer_id": "2", "expires_at": expires, "signature": good}, 401, "forged"),
        (
            {
                "customer_id": "1",
                "expires_at": 1000,
                "signature": sign_identity("1", secret, 1000),
            },
            401,
            "expired",
        ),
        ({"customer_id": "1", "expires_at": expires, "signature": "xyz"}, 422, "malformed"),
        ({"customer_id": "1", "signature": good}, 422, "together"),
        (
            {
                "customer_id": "99999",
                "expires_at": expires,
                "signature": sign_identity("99999", secret, expires),
            },
            422,
            "no customer",
        ),
    ]
    for body, status, words in cases:
        response = gw.client.post("/api/conversations", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"]
    with session_scope(gw.engine) as session:
        assert session.scalars(select(Conversation)).all() == []


# ------------------------------------------------------------------ staff


def test_staff_routes_need_login_csrf_and_the_right_member(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    bob = staff_login(gw.engine, "bob@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "can I talk to a person")
    base = f"/api/staff/conversations/{chat}"
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/api/staff/queue", None),
        ("PUT", "/api/staff/presence", {"state": "online"}),
        ("POST", "/api/staff/presence/heartbeat", None),
        ("GET", base, None),
        ("POST", f"{base}/claim", None),
        ("POST", f"{base}/reply", {"text": "hi"}),
        ("POST", f"{base}/notes", {"text": "note"}),
        ("POST", f"{base}/transfer", {"to_staff_id": bob.id}),
        ("POST", f"{base}/return-to-bot", None),
        ("POST", f"{base}/close", {"resolution": "done"}),
    ]
    for method, path, body in routes:
        response = gw.client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        if method != "GET":
            response = gw.client.request(method, path, json=body, headers=ann.headers(csrf=False))
            assert response.status_code == 403, (method, path)
            assert "CSRF" in response.json()["detail"]
    assert staff_post(gw, ann, f"{base}/claim").status_code == 200
    # Only the member who has the chat may answer, hand it back or close it.
    for path, body in [
        (f"{base}/reply", {"text": "hi"}),
        (f"{base}/return-to-bot", None),
        (f"{base}/close", {"resolution": "x"}),
        (f"{base}/transfer", {"to_staff_id": bob.id}),
    ]:
        response = staff_post(gw, bob, path, body)
        assert response.status_code == 403, (path, response.text)
    # The owner may step in.
    owner = staff_login(gw.engine, "olga@shop.example", role="owner")
    assert staff_post(gw, owner, f"{base}/reply", {"text": "Owner here"}).status_code == 200
    assert staff_post(gw, ann, f"{base}/reply", {"text": "   "}).status_code == 422
    assert staff_post(gw, ann, "/api/staff/conversations/nope/claim").status_code == 404


async def test_twenty_concurrent_claims_one_wins(database_url: str) -> None:
    gateway = make_gateway(database_url)
    staff = [staff_login(gateway.engine, f"s{i}@shop.example") for i in range(20)]
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", auth=WidgetTokens()
    ) as client:
        for member in staff:
            response = await client.put(
                "/api/staff/presence", json={"state": "online"}, headers=member.headers()
            )
            assert response.status_code == 200
        chat = (await client.post("/api/conversations")).json()["id"]
        response = await client.post(
            f"/api/conversations/{chat}/messages", json={"text": "talk to a person"}
        )
        assert response.status_code == 200
        claims = await asyncio.gather(
            *(
                client.post(f"/api/staff/conversations/{chat}/claim", headers=member.headers())
                for member in staff
            )
        )
    codes = sorted(r.status_code for r in claims)
    assert codes == [200] + [409] * 19
    winner = staff[[r.status_code for r in claims].index(200)]
    assert conversation(gateway.engine, chat).assigned_staff_id == winner.id
    assert len(events(gateway.engine, chat, "state_changed")) == 2  # queued, with_staff
    gateway.app.state.scorer.close()
    gateway.engine.dispose()  # no lifespan ran here to close its pool of 20 claimers


def test_claim_reply_note_return_to_bot_close_and_csat(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "where is my order? talk to a person")
    base = f"/api/staff/conversations/{chat}"
    assert staff_post(gw, ann, f"{base}/claim").status_code == 200
    assert staff_post(gw, ann, f"{base}/claim").status_code == 409
    assert gw.state(chat) == "with_staff"
    assert (
        staff_post(gw, ann, f"{base}/reply", {"text": "Hi, I'm Ann. Let me check."}).status_code
        == 200
    )
    note = staff_post(gw, ann, f"{base}/notes", {"text": "INTERNAL: customer seems upset"})
    assert note.status_code == 200 and note.json()["note"]["internal"] is True
    held = gw.say(chat, "thanks Ann")
    assert held["message"]["status"] == "held" and held["replies"] == []

    history = gw.history(chat)
    texts = [m["text"] for m in history]
    assert "Hi, I'm Ann. Let me check." in texts
    assert not any("INTERNAL" in t for t in texts)
    assert any(m["kind"] == "staff_joined" for m in history)

    context = gw.client.get(base, headers=ann.headers()).json()
    assert any(m["internal"] for m in context["transcript"])
    assert context["escalations"][0]["reasons"] == ["asked for a person"]
    assert context["summary"]["points"][0]["text"].startswith("where is my order")
    assert len(context["mood_timeline"]) == 2

    assert staff_post(gw, ann, f"{base}/return-to-bot").status_code == 200
    assert gw.state(chat) == "bot" and gw.rasa.resumed == [chat]
    assert gw.history(chat)[-1]["kind"] == "returned_to_bot"
    answer = gw.say(chat, "what are your opening hours?")
    assert answer["replies"][0]["text"] == "We're open Tuesday to Sunday."
    assert gw.state(chat) == "bot"  # the old frustration does not send it straight back

    gw.say(chat, "one more thing, a person please")
    assert staff_post(gw, ann, f"{base}/claim").status_code == 200
    assert gw.client.post(f"/api/conversations/{chat}/csat", json={"score": 5}).status_code == 409
    closed = staff_post(gw, ann, f"{base}/close", {"resolution": "Refund issued"})
    assert closed.status_code == 200 and gw.state(chat) == "closed"
    assert gw.history(chat)[-1]["kind"] == "csat_request"
    assert gw.client.post(f"/api/conversations/{chat}/csat", json={"score": 6}).status_code == 422
    rated = gw.client.post(
        f"/api/conversations/{chat}/csat", json={"score": 5, "comment": "Ann was great"}
    )
    assert rated.status_code == 200
    stored = conversation(gw.engine, chat)
    assert (stored.csat, stored.csat_comment, stored.resolution) == (
        5,
        "Ann was great",
        "Refund issued",
    )
    [csat] = events(gw.engine, chat, "csat")
    assert csat.data["score"] == 5
    closing = [e for e in events(gw.engine, chat, "state_changed") if e.to_state == "closed"]
    assert closing[0].reason == "Refund issued"
    assert closing[0].data["handle_seconds"] is not None
    # Capacity is released: Ann can take another conversation at capacity 1.
    assert asyncio.run(gw.app.state.desk.queue.load(str(ann.id))) == 0


def test_close_after_returning_to_the_bot_wraps_up_with_csat(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    bob = staff_login(gw.engine, "bob@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "a person please")
    base = f"/api/staff/conversations/{chat}"
    assert staff_post(gw, ann, f"{base}/claim").status_code == 200
    assert staff_post(gw, ann, f"{base}/return-to-bot").status_code == 200
    gw.say(chat, "what are your opening hours?")
    assert gw.state(chat) == "bot"
    # Only the person who handed it back (or the owner) may close the bot's conversation.
    refused = staff_post(gw, bob, f"{base}/close", {"resolution": "not mine"})
    assert refused.status_code == 409 and gw.state(chat) == "bot"
    closed = staff_post(gw, ann, f"{base}/close", {"resolution": "Answered, back with bot"})
    assert closed.status_code == 200 and gw.state(chat) == "closed"
    assert gw.history(chat)[-1]["kind"] == "csat_request"
    assert gw.client.post(f"/api/conversations/{chat}/csat", json={"score": 5}).status_code == 200
    # A conversation the bot handled alone has nobody to close it.
    solo = gw.chat()
    gw.say(solo, "what are your opening hours?")
    lone = staff_post(gw, ann, f"/api/staff/conversations/{solo}/close", {"resolution": "x"})
    assert lone.status_code == 409


def test_transfer_to_a_colleague(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    bob = staff_login(gw.engine, "bob@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "a person please")
    base = f"/api/staff/conversations/{chat}"
    staff_post(gw, ann, f"{base}/claim")
    offline_bob = staff_post(gw, ann, f"{base}/transfer", {"to_staff_id": bob.id})
    assert offline_bob.status_code == 409 and "not online" in offline_bob.json()["detail"]
    online(gw, bob)
    assert staff_post(gw, ann, f"{base}/transfer", {"to_staff_id": bob.id}).status_code == 200
    assert conversation(gw.engine, chat).assigned_staff_id == bob.id
    assert staff_post(gw, bob, f"{base}/reply", {"text": "Bob here"}).status_code == 200
    assert staff_post(gw, ann, f"{base}/reply", {"text": "Ann"}).status_code == 403
    assert staff_post(gw, ann, f"{base}/transfer", {"to_staff_id": 999}).status_code == 422
    [moved] = events(gw.engine, chat, "transferred")
    assert moved.data == {"from_staff_id": ann.id, "to_staff_id": bob.id}


def test_staff_websocket_gets_escalations_and_customer_messages(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    online(gw, ann)
    with gw.client.websocket_connect("/ws/staff") as anonymous:
        assert anonymous.receive_json()["status"] == 401
    with gw.client.websocket_connect("/ws/staff", headers=ann.headers(csrf=False)) as socket:
        assert socket.receive_json()["type"] == "ready"
        chat = gw.chat()
        gw.say(chat, "talk to a person")
        escalation = socket.receive_json()
        assert escalation["type"] == "escalation" and escalation["conversation_id"] == chat
        assert escalation["reasons"] == ["asked for a person"]
        staff_post(gw, ann, f"/api/staff/conversations/{chat}/claim")
        assert socket.receive_json()["type"] == "queue_changed"
        gw.say(chat, "are you there?")
        pushed = socket.receive_json()
        assert pushed["type"] == "customer_message"
        assert pushed["message"]["text"] == "are you there?"
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong", "presence_alive": True}


def test_customer_websocket_never_sees_internal_notes(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "talk to a person")
    staff_post(gw, ann, f"/api/staff/conversations/{chat}/claim")
    with gw.client.websocket_connect(f"/ws/chat/{chat}") as socket:
        socket.send_json(gw.client.auth.auth_frame(chat))  # type: ignore[attr-defined]
        assert socket.receive_json() == {"type": "ready"}
        staff_post(gw, ann, f"/api/staff/conversations/{chat}/notes", {"text": "SECRET note"})
        staff_post(gw, ann, f"/api/staff/conversations/{chat}/reply", {"text": "Hello!"})
        frame = socket.receive_json()
        assert frame["type"] == "message" and frame["message"]["text"] == "Hello!"
        assert frame["message"]["author"] == "Ann"


# ------------------------------------------------------------------ offline fallback


def test_nobody_online_collects_contact_details_into_a_ticket(gw: Gateway) -> None:
    chat = gw.chat()
    gw.say(chat, "my parcel is damaged")
    first = gw.say(chat, "I want to talk to a person")
    assert gw.state(chat) == "offline_ticket"
    assert "What's your name?" in first["replies"][-1]["text"]
    assert "Nobody from our team is available" in first["replies"][-1]["text"]
    sent = len(gw.rasa.sent)
    asked = gw.say(chat, "Jane Doe")
    assert "e-mail address or phone number" in asked["replies"][0]["text"]
    again = gw.say(chat, "not sure")  # ("no thanks" leaves the form: see below)
    assert "doesn't look like" in again["replies"][0]["text"]
    done = gw.say(chat, "jane@example.com")
    assert "jane@example.com" in done["replies"][0]["text"]
    assert "as soon as possible" in done["replies"][0]["text"]
    assert len(gw.rasa.sent) == sent  # the contact flow never reaches Rasa
    with session_scope(gw.engine) as session:
        ticket = session.scalars(select(Ticket)).one()
        stored = {
            m.id: m.text
            for m in session.scalars(select(Message).where(Message.sender == "customer"))
        }
        assert ticket.status == "open"
        assert (ticket.name, ticket.email) == ("Jane Doe", "jane@example.com")
        assert ticket.reasons == ["asked for a person"]
        question = [stored[i] for i in ticket.message_ids]
        assert question[:2] == ["my parcel is damaged", "I want to talk to a person"]
    [changed] = [e for e in events(gw.engine, chat, "state_changed")]
    assert (changed.from_state, changed.to_state) == ("bot", "offline_ticket")
    # Afterwards the customer is back with the bot.
    back = gw.say(chat, "what are your opening hours?")
    assert back["replies"][0]["text"] == "We're open Tuesday to Sunday."
    assert gw.state(chat) == "bot"


def test_outside_staff_hours_the_ticket_promises_the_next_opening(database_url: str) -> None:
    gateway = make_gateway(database_url, clock=CLOSED_MONDAY)
    with gateway.client:
        online(gateway, staff_login(gateway.engine, "ann@shop.example"))  # online, but closed
        chat = gateway.chat()
        first = gateway.say(chat, "talk to a person")
        assert gateway.state(chat) == "offline_ticket"
        assert "back tomorrow at 10" in first["replies"][-1]["text"]
        gateway.say(chat, "Jane")
        done = gateway.say(chat, "(312) 555-0199")
        assert "by tomorrow at 10" in done["replies"][0]["text"]
        with session_scope(gateway.engine) as session:
            ticket = session.scalars(select(Ticket)).one()
            assert ticket.phone and ticket.phone.endswith("3125550199")
            assert ticket.reply_by is not None and ticket.reply_by > CLOSED_MONDAY
        # The same gateway at an open hour queues instead.
        gateway.clock[0] = OPEN
        other = gateway.chat()
        gateway.say(other, "talk to a person")
        assert gateway.state(other) == "queued"


def test_sla_overdue_conversations_are_re_announced(gw: Gateway) -> None:
    ann = staff_login(gw.engine, "ann@shop.example")
    online(gw, ann)
    chat = gw.chat()
    gw.say(chat, "talk to a person")
    desk = gw.app.state.desk

    async def check() -> list[Any]:
        return await desk.announce_overdue(0.0)

    overdue = gw.client.portal.call(check)  # type: ignore[union-attr]
    assert [e.conversation_id for e in overdue] == [chat]
    queue = gw.client.get("/api/staff/queue", headers=ann.headers()).json()["queue"]
    assert queue[0]["priority"] == overdue[0].priority


def test_a_restarted_in_process_gateway_puts_queued_chats_back(database_url: str) -> None:
    first = make_gateway(database_url)
    with first.client:
        online(first, staff_login(first.engine, "ann@shop.example"))
        chat = first.chat()
        first.say(chat, "talk to a person")
    second = make_gateway(database_url)  # same database, a fresh in-process queue
    with second.client:
        ann = staff_login(second.engine, "ann@shop.example")
        queue = second.client.get("/api/staff/queue", headers=ann.headers()).json()["queue"]
        assert [e["conversation_id"] for e in queue] == [chat]
        assert queue[0]["reasons"] == ["asked for a person"]
        assert staff_post(second, ann, f"/api/staff/conversations/{chat}/claim").status_code == 200


@pytest.mark.parametrize(
    ("text", "felt"),
    [
        ("10482", False),
        ("jane@example.com", False),
        ("(312) 555-0199", False),
        ("yes", False),
        ("where is my order 10482", True),
        ("this is ridiculous!!!", True),
    ],
)
def test_bare_form_answers_carry_no_mood(text: str, felt: bool) -> None:
    from handoff.turn import felt_score

    assert (felt_score(text, [], -0.5) is not None) is felt


def test_automatic_assignment_goes_to_the_least_loaded_member(database_url: str) -> None:
    gateway = make_gateway(database_url, handoff_assignment="auto")
    with gateway.client:
        busy = staff_login(gateway.engine, "busy@shop.example", capacity=2)
        free = staff_login(gateway.engine, "free@shop.example", capacity=2)
        online(gateway, busy, capacity=2)
        first = gateway.chat()
        gateway.say(first, "can I talk to a person")
        assert gateway.state(first) == "with_staff"
        first_owner = conversation(gateway.engine, first).assigned_staff_id
        online(gateway, free, capacity=2)
        second = gateway.chat()
        result = gateway.say(second, "can I talk to a person")
        assert gateway.state(second) == "with_staff"
        second_owner = conversation(gateway.engine, second).assigned_staff_id
        assert {first_owner, second_owner} == {busy.id, free.id}  # least-loaded gets it
        assert result["replies"][-1]["kind"] == "staff_joined"
        [claimed] = [
            e for e in events(gateway.engine, second, "state_changed") if e.to_state == "with_staff"
        ]
        assert claimed.actor == f"staff:{second_owner}"
        # Everyone at capacity: the next one waits in the queue for a claim.
        for _ in range(2):
            gateway.say(gateway.chat(), "can I talk to a person")
        waiting = gateway.chat()
        gateway.say(waiting, "can I talk to a person")
        assert gateway.state(waiting) == "queued"


# ------------------------------------------------------------------ offline form: names, e-mails


def ticket_of(engine: Engine, conversation_id: str) -> Ticket:
    with session_scope(engine) as session:
        return session.scalars(
            select(Ticket).where(Ticket.conversation_id == conversation_id)
        ).one()


def offline_chat(gw: Gateway) -> str:
    """A conversation in the offline fallback (nobody online), asked for a name."""
    chat = gw.chat()
    gw.say(chat, "my parcel is damaged")
    first = gw.say(chat, "I want to talk to a person")
    assert gw.state(chat) == "offline_ticket"
    assert "What's your name?" in first["replies"][-1]["text"]
    return chat


def test_a_bot_question_mid_form_is_the_only_question_of_its_turn(gw: Gateway) -> None:
    chat = offline_chat(gw)
    asked = gw.say(chat, "where is my parcel")  # the fake bot asks for the order number
    assert [r["text"] for r in asked["replies"]] == ["Could you give me your order number?"]
    answered = gw.say(chat, "what are your opening hours?")
    texts = [r["text"] for r in answered["replies"]]
    assert texts[0] == "We're open Tuesday to Sunday."
    assert "what name should I put on your request" in texts[1]  # asked once it is alone
    assert gw.state(chat) == "offline_ticket"


def test_a_question_instead_of_a_name_is_answered_and_the_name_asked_again(gw: Gateway) -> None:
    chat = offline_chat(gw)
    sent = len(gw.rasa.sent)
    asked = gw.say(chat, "what are your opening hours?")
    texts = [r["text"] for r in asked["replies"]]
    assert texts[0] == "We're open Tuesday to Sunday."  # the bot answered it
    assert "what name should I put on your request" in texts[1]
    assert gw.rasa.sent[sent:] == ["what are your opening hours?"]
    assert ticket_of(gw.engine, chat).name is None
    assert gw.state(chat) == "offline_ticket"
    # A request without a question mark is not a name either; the form does not nag twice.
    again = gw.say(chat, "how much is the tailored blazer")
    assert [r["text"] for r in again["replies"]] == ["Could you give me your order number?"]
    assert ticket_of(gw.engine, chat).name is None
    named = gw.say(chat, "Marcus Reed")
    assert named["replies"][0]["text"].startswith("Thanks, Marcus Reed.")
    bad = gw.say(chat, "marcus@example")
    assert (
        '"marcus@example" doesn\'t look like a complete e-mail address'
        in (bad["replies"][0]["text"])
    )
    done = gw.say(chat, "it's marcus.reed@example.com")
    assert "marcus.reed@example.com" in done["replies"][0]["text"]
    ticket = ticket_of(gw.engine, chat)
    assert (ticket.name, ticket.email, ticket.status) == (
        "Marcus Reed",
        "marcus.reed@example.com",
        "open",
    )
    with session_scope(gw.engine) as session:
        kept = [session.get_one(Message, i).text for i in ticket.message_ids]
    assert kept[:3] == [
        "my parcel is damaged",
        "I want to talk to a person",
        "what are your opening hours?",
    ]


def test_a_name_with_a_lead_in_is_accepted(gw: Gateway) -> None:
    chat = offline_chat(gw)
    sent = len(gw.rasa.sent)
    asked = gw.say(chat, "it's Ana")
    assert asked["replies"][0]["text"].startswith("Thanks, Ana.")
    assert ticket_of(gw.engine, chat).name == "Ana"
    assert len(gw.rasa.sent) == sent


def test_no_thanks_leaves_the_form_and_keeps_the_ticket(gw: Gateway) -> None:
    chat = offline_chat(gw)
    left = gw.say(chat, "no thanks")
    assert "I've kept your message for our team (ticket #" in left["replies"][0]["text"]
    assert gw.state(chat) == "bot"
    ticket = ticket_of(gw.engine, chat)
    assert (ticket.name, ticket.email, ticket.status) == (None, None, "open")
    with session_scope(gw.engine) as session:
        kept = [session.get_one(Message, i).text for i in ticket.message_ids]
    assert kept[:2] == ["my parcel is damaged", "I want to talk to a person"]
    back = gw.say(chat, "what are your opening hours?")
    assert back["replies"][0]["text"] == "We're open Tuesday to Sunday."


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Marcus Reed", "Marcus Reed"),
        ("it's Ana", "Ana"),
        ("I'm Jean-Luc O'Neil", "Jean-Luc O'Neil"),
        ("my name is Zoë Østergård.", "Zoë Østergård"),
        ("how much is the tailored blazer", None),
        ("what are your opening hours?", None),
        ("Marcus?", None),
        ("where is my order", None),
        ("ok", None),
        ("thanks", None),
        ("10482", None),
        ("R2D2", None),
        ("one two three four five six", None),
        ("A" * 81, None),
        ("blazer", None),
        # as strangers typed them at a name question
        ("Good. Name: Lena Hoffmann", "Lena Hoffmann"),
        ("name is Amira Haddad, it is my wife name", "Amira Haddad"),
        ("Good, thanks", None),
        ("yes that good", None),
    ],
)
def test_parse_name(text: str, name: str | None) -> None:
    from tandem.business.contact import parse_name

    assert parse_name(text) == name


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("jane@example.com", ("jane@example.com", None)),
        ("it's Jane.Doe+shop@Example.co.uk.", ("jane.doe+shop@example.co.uk", None)),
        ("jane@example", (None, "jane@example")),
        ("jane@@example.com", (None, "jane@@example.com")),
        ("(312) 555-0199", (None, None)),
    ],
)
def test_find_email(text: str, found: tuple[str | None, str | None]) -> None:
    from tandem.business.contact import find_email

    assert find_email(text) == found


# ------------------------------------------------------------------ "nobody available" wording


@pytest.mark.parametrize(
    ("moment", "expected", "absent"),
    [
        # Tuesday 10:03 in Chicago, open: nobody online, and no opening time quoted.
        (datetime(2026, 11, 24, 16, 3, tzinfo=UTC), "Nobody from our team is available", "10"),
        # Tuesday 9 AM: before opening.
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), "we're back today at 10 AM", None),
        # Tuesday 8 PM: after closing.
        (datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "we're back tomorrow at 10 AM", None),
        # Sunday 6 PM: Monday is closed.
        (datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "we're back on Tuesday at 10 AM", None),
        # Wednesday 9 PM before Thanksgiving: back on Black Friday morning.
        (datetime(2026, 11, 26, 3, 0, tzinfo=UTC), "we're back on Friday at 8 AM", None),
    ],
)
def test_nobody_available_quotes_the_opening_only_when_closed(
    database_url: str, moment: datetime, expected: str, absent: str | None
) -> None:
    gateway = make_gateway(database_url, clock=moment)
    with gateway.client:
        chat = gateway.chat()
        first = gateway.say(chat, "talk to a person")
        assert gateway.state(chat) == "offline_ticket"
        text = first["replies"][-1]["text"]
        assert expected in text
        if absent is not None:
            assert "we're back" not in text and absent not in text


# ------------------------------------------------------------------ high value: priority mode


def test_a_calm_high_value_customer_stays_with_the_bot_until_something_else(gw: Gateway) -> None:
    online(gw, staff_login(gw.engine, "ann@shop.example"))
    expires = int(time.time()) + 3600
    secret = gw.app.state.settings.identity_secret
    marcus = gw.chat(
        customer_id="2", expires_at=expires, signature=sign_identity("2", secret, expires)
    )
    gw.say(marcus, "where is my order 10482")  # a calm order lookup ($2,022 lifetime value)
    assert gw.state(marcus) == "bot"
    assert events(gw.engine, marcus, "escalation") == []
    gw.say(marcus, "can I talk to a person")
    [escalation] = events(gw.engine, marcus, "escalation")
    assert escalation.data["reasons"] == [
        "asked for a person",
        "high-value customer: lifetime value $2,022.56",
    ]
    assert escalation.data["priority"] == 4 + 1


# ------------------------------------------------------------------ sentiment model still loading


class FakeSlowLoadingAnalyzer(FakeKeywordAnalyzer):
    """Fake model whose load blocks until the test releases it (a busy CPU warming up)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.loaded = threading.Event()

    def load(self) -> FakeSlowLoadingAnalyzer:
        assert self.loaded.wait(30), "the test never released the model"
        return self


def test_a_message_does_not_wait_for_the_sentiment_model_to_load(database_url: str) -> None:
    analyzer = FakeSlowLoadingAnalyzer()
    gateway = make_gateway(database_url)
    scorer = SentimentBatcher(analyzer.load, max_wait_seconds=0.002)
    gateway.app.state.flows.scorer = gateway.app.state.scorer = scorer
    with gateway.client:
        chat = gateway.chat()
        started = time.monotonic()
        result = gateway.say(chat, "where is my order, this is ridiculous")
        assert time.monotonic() - started < 3
        assert result["replies"][0]["text"] == "Could you give me your order number?"
        assert gateway.client.get("/healthz").json()["sentiment"] == "not_loaded"
        [stored] = [m for m in messages(gateway.engine, chat) if m.sender == "customer"]
        assert stored.sentiment_score is None
        assert (stored.payload or {}).get("sentiment") == "pending"

        analyzer.loaded.set()  # the model is ready: the message is scored in the background
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [stored] = [m for m in messages(gateway.engine, chat) if m.sender == "customer"]
            if stored.sentiment_score is not None:
                break
            time.sleep(0.05)
        assert stored.sentiment_score is not None and stored.sentiment_score < -0.5
        assert (stored.payload or {}).get("sentiment") == "late"
        mood = conversation(gateway.engine, chat).mood or {}
        assert mood["ema"] < -0.5  # folded into the Mood as if it had come in time
        assert stored.intent == "order_status" and stored.status == "answered"
        # Once loaded, the next message is scored within its turn.
        gateway.say(chat, "thanks, great")
        latest = [m for m in messages(gateway.engine, chat) if m.sender == "customer"][-1]
        assert latest.sentiment_score is not None and latest.sentiment_score > 0.5
        assert (latest.payload or {}).get("sentiment") is None


def test_every_gateway_follows_an_edited_policy_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The dashboard saves handoff.yml in one process; the others pick it up by its mtime."""
    from handoff.policy import load_policy
    from tandem.config import PROJECT_ROOT
    from tandem.conversations.flow import ChatFlows

    path = tmp_path / "handoff.yml"
    path.write_text((PROJECT_ROOT / "handoff.yml").read_text(encoding="utf-8"), encoding="utf-8")
    flows = ChatFlows(None, None, None, None, None, load_policy(path), policy_file=path)  # type: ignore[arg-type]
    assert flows.policy.triggers.frustration.threshold == 0.60

    def rewrite(text: str, step: int) -> None:
        before = path.stat().st_mtime_ns
        path.write_text(text, encoding="utf-8")
        os.utime(path, ns=(before + step * 10**9, before + step * 10**9))

    rewrite(path.read_text(encoding="utf-8").replace("threshold: 0.60", "threshold: 0.55"), 1)
    flows.follow_policy_file()
    assert flows.policy.triggers.frustration.threshold == 0.55
    # A broken edit is reported and the policy in force stays.
    rewrite("triggers: [not, a, mapping", 2)
    flows.follow_policy_file()
    assert flows.policy.triggers.frustration.threshold == 0.55
    assert "keeping the handoff policy in force" in caplog.text


# ------------------------------------------------------------------ one conversation core


def test_the_gateway_and_the_replay_run_the_same_per_turn_step(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to handoff.turn.decide_turn changes both what customers get and the bench."""
    from handoff import turn as turn_step
    from handoff.policy import PolicySettings
    from handoff.replay import Scenario, Turn, replay_scenario

    real = turn_step.decide_turn
    calls: list[str] = []

    def changed_step(turn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(turn.text)
        outcome = real(turn, *args, **kwargs)
        if "pineapple" in turn.text and not kwargs.get("already_escalated"):
            from handoff.policy import Decision, Reason

            forced = Decision("escalate", 9, [Reason("pineapple", "said pineapple")])
            return turn_step.TurnOutcome(forced, outcome.state, outcome.mood, outcome.signals)
        return outcome

    monkeypatch.setattr(turn_step, "decide_turn", changed_step)
    online(gw, staff_login(gw.engine, "ann@shop.example"))
    chat = gw.chat()
    gw.say(chat, "what are your hours, pineapple?")
    assert gw.state(chat) == "queued"
    [escalation] = events(gw.engine, chat, "escalation")
    assert escalation.reason == "said pineapple"
    scenario = Scenario(turns=[Turn(text="hours please, pineapple", intent="ask_hours")])
    result = replay_scenario(scenario, PolicySettings())
    assert result.first_escalation == 1 and result.turns[0].decision.summary == "said pineapple"
    assert calls == ["what are your hours, pineapple?", "hours please, pineapple"]


def test_every_path_to_the_bot_publishes_typing_and_the_unavailable_reply(gw: Gateway) -> None:
    """After an offline ticket the message goes to the bot by the same path: the WebSocket
    sees the typing events and the "bot unavailable" reply when Rasa is down."""
    chat = gw.chat()
    gw.say(chat, "talk to a person")
    gw.say(chat, "Jane Doe")
    gw.say(chat, "jane@example.com")
    assert gw.state(chat) == "offline_ticket"
    with gw.client.websocket_connect(f"/ws/chat/{chat}") as socket:
        socket.send_json(gw.client.auth.auth_frame(chat))  # type: ignore[attr-defined]
        assert socket.receive_json() == {"type": "ready"}
        reply = gw.say(chat, "rasa down: where is my parcel?")
        frames = [socket.receive_json() for _ in range(4)]
    assert [f["type"] for f in frames] == ["message", "typing", "typing", "message"]
    assert frames[0]["message"]["text"] == "rasa down: where is my parcel?"
    assert frames[3]["message"]["text"] == BOT_UNAVAILABLE_TEXT
    assert reply["replies"][0]["text"] == BOT_UNAVAILABLE_TEXT
    assert gw.state(chat) == "bot"


def test_staff_hours_always_outside_opening_hours_queues_with_consistent_words(
    database_url: str,
) -> None:
    """Availability is decided once: with STAFF_HOURS=always and someone online, a closed
    shop never tells the customer "we're closed" and then queues them."""
    gateway = make_gateway(database_url, clock=CLOSED_MONDAY, staff_hours="always")
    with gateway.client:
        online(gateway, staff_login(gateway.engine, "ann@shop.example"))
        chat = gateway.chat()
        turn = gateway.say(chat, "talk to a person")
        assert gateway.state(chat) == "queued"
        said = " ".join(r["text"] for r in turn["replies"])
        assert "number 1 in line" in said
        for closed_words in ("closed", "we're back", "away", "when we open"):
            assert closed_words not in said.lower()


def test_the_state_machine_docstring_and_table_agree() -> None:
    from tandem.conversations import states

    documented = {}
    for line in (states.__doc__ or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in {m.value for m in states.Move} and "->" in parts:
            arrow = parts.index("->")
            sources = {p.strip(",") for p in parts[1:arrow]}
            documented[states.Move(parts[0])] = (sources, parts[arrow + 1])
    assert set(documented) == set(states.Move)
    for move, (sources, target) in states.MOVES.items():
        assert documented[move] == ({s.value for s in sources}, target.value), move
    with pytest.raises(states.InvalidTransition, match="cannot claim a conversation that is bot"):
        states.check_move(states.Move.CLAIM, states.State.BOT)
