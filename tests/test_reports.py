"""Owner reports, the sentiment log and the CSV exports, on SQLite and PostgreSQL.

Conversations are built through the real conversation service and state machine (the
same calls the gateway makes), with their timestamps pinned so every figure is exact.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tandem.business.models import Customer
from tandem.conversations import service
from tandem.conversations.models import Conversation, Message, Ticket
from tandem.conversations.states import State
from tandem.db import Base, session_scope
from tandem.reports import export, log
from tandem.reports.service import (
    LogFilters,
    Masker,
    Period,
    ReportError,
    build_report,
    make_period,
    parse_filters,
    parse_page,
    percentile,
)
from tandem.staff import service as staff_service

DAY1 = date(2026, 3, 2)
DAY2 = date(2026, 3, 3)
CHICAGO = ZoneInfo("America/Chicago")


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


class Builder:
    """Conversations through the conversation service, with pinned times."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def conversation(self, when: datetime, customer_id: int | None = None) -> Conversation:
        conversation = service.create_conversation(
            self.session, customer_id=customer_id, verified_via="test" if customer_id else None
        )
        conversation.created_at = when
        for event in conversation.events:
            event.created_at = when
        self.session.flush()
        return conversation

    def customer(
        self,
        conversation: Conversation,
        text: str,
        when: datetime,
        score: float | None = None,
        intent: str | None = None,
    ) -> Message:
        message, _ = service.add_message(self.session, conversation, sender="customer", text=text)
        message.created_at = when
        if intent is not None:
            service.record_nlu(message, {"intent": {"name": intent, "confidence": 0.9}})
        if score is not None:
            message.sentiment_score = score
            message.sentiment_negative = max(0.0, -score)
            message.sentiment_positive = max(0.0, score)
            message.sentiment_neutral = 1 - abs(score)
        self.session.flush()
        return message

    def say(self, conversation: Conversation, sender: str, text: str, when: datetime) -> Message:
        message, _ = service.add_message(self.session, conversation, sender=sender, text=text)
        message.created_at = when
        self.session.flush()
        return message

    def escalate(
        self,
        conversation: Conversation,
        when: datetime,
        triggers: list[str],
        reasons: list[str],
        *,
        to: State = State.QUEUED,
        priority: int = 3,
    ) -> None:
        decision = {"action": "escalate", "priority": priority, "triggers": triggers}
        moved = service.transition(
            self.session, conversation, to, actor="policy", reason="; ".join(reasons), data=decision
        )
        moved.created_at = when
        escalation = service.record_event(
            self.session,
            conversation,
            kind="escalation",
            actor="policy",
            reason="; ".join(reasons),
            data={
                "priority": priority,
                "reasons": reasons,
                "decision": decision,
                "mood": {"frustration": 0.8},
            },
        )
        escalation.created_at = when
        self.session.flush()

    def claim(self, conversation: Conversation, staff_id: int, when: datetime) -> None:
        moved = service.transition(
            self.session,
            conversation,
            State.WITH_STAFF,
            actor=f"staff:{staff_id}",
            reason="claimed",
        )
        moved.created_at = when
        conversation.assigned_staff_id = staff_id
        self.session.flush()

    def move(self, conversation: Conversation, to: State, when: datetime, actor: str) -> None:
        moved = service.transition(self.session, conversation, to, actor=actor, reason="test")
        moved.created_at = when
        self.session.flush()


@dataclass
class World:
    ids: dict[str, str] = field(default_factory=dict)
    staff1: int = 0
    staff2: int = 0


@pytest.fixture
def world(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> World:
    """Seven conversations over two days (A-E count, F is empty, G is outside the period).

    A bot only, positive, closed, CSAT 5          (day 1, 10:00)
    B handed off: fallbacks + negative streak,
      VIP Jane Doe, staff 1 replied after 30 s,
      closed, CSAT 4                               (day 1, 14:00)
    C offline ticket (large cancellation)          (day 2, 09:00)
    D asked for a person, with staff 1 now: open,
      first reply after 90 s                       (day 2, 11:00)
    E a fallback, staff 2 after 150 s, returned
      to the bot; a formula in the text            (day 2, 16:00)
    """
    monkeypatch.setattr(
        staff_service, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024)
    )
    Base.metadata.create_all(engine)
    w = World()
    with session_scope(engine) as session:
        b = Builder(session)
        w.staff1 = staff_service.create_user(
            session, email="ann@shop.example", password="x" * 12, display_name="Ann"
        ).id
        w.staff2 = staff_service.create_user(
            session, email="raj@shop.example", password="x" * 12, display_name="Raj"
        ).id
        jane = Customer(
            name="Jane Doe",
            email="jane@example.com",
            tier="vip",
            lifetime_value=Decimal("2500.00"),
        )
        session.add(jane)
        session.flush()

        a = b.conversation(at(DAY1, 10))
        b.customer(a, "hello there", at(DAY1, 10), 0.6, "greet")
        b.say(a, "bot", "Hi! How can I help?", at(DAY1, 10, 0, 1))
        b.customer(a, "what are your opening hours", at(DAY1, 10, 1), 0.4, "ask_hours")
        b.move(a, State.CLOSED, at(DAY1, 10, 5), "bot")
        a.csat = 5

        c_b = b.conversation(at(DAY1, 14), customer_id=jane.id)
        b.customer(c_b, "this is useless", at(DAY1, 14), -0.8, "nlu_fallback")
        b.customer(
            c_b,
            "I am Jane Doe, my email is jane@example.com, get me a manager",
            at(DAY1, 14, 1),
            -0.6,
            "nlu_fallback",
        )
        b.escalate(
            c_b,
            at(DAY1, 14, 1),
            ["fallbacks", "negative_streak"],
            ["the bot did not understand twice", "3 negative messages in a row"],
        )
        b.claim(c_b, w.staff1, at(DAY1, 14, 1, 20))
        note = b.say(c_b, "staff", "internal: VIP, be nice", at(DAY1, 14, 1, 25))
        note.status = "internal"
        b.say(c_b, "staff", "Hi Jane, I am here to help", at(DAY1, 14, 1, 30))
        b.move(c_b, State.CLOSED, at(DAY1, 14, 10), f"staff:{w.staff1}")
        c_b.csat = 4

        c = b.conversation(at(DAY2, 9))
        b.customer(c, "I want to cancel order 10482", at(DAY2, 9), -0.3, "cancel_order")
        b.escalate(
            c,
            at(DAY2, 9, 0, 5),
            ["large_cancellation"],
            ["cancelling an order of $420"],
            to=State.OFFLINE_TICKET,
        )
        session.add(Ticket(conversation_id=c.id, name="Marcus Reed", reasons=["cancel"]))

        d = b.conversation(at(DAY2, 11))
        b.customer(d, "can I talk to a person", at(DAY2, 11), 0.0, "request_human")
        b.escalate(d, at(DAY2, 11), ["request_human"], ["asked for a person"], priority=4)
        b.claim(d, w.staff1, at(DAY2, 11, 0, 30))
        b.say(d, "staff", "Hello, Ann here", at(DAY2, 11, 1, 30))

        e = b.conversation(at(DAY2, 16))
        b.customer(e, '=HYPERLINK("http://evil.example")', at(DAY2, 16), -0.5, "out_of_scope")
        b.escalate(e, at(DAY2, 16), ["fallbacks"], ["the bot did not understand"])
        b.claim(e, w.staff2, at(DAY2, 16, 1))
        b.say(e, "staff", "+1 that link is not ours", at(DAY2, 16, 2, 30))
        b.move(e, State.BOT, at(DAY2, 16, 5), f"staff:{w.staff2}")

        f = b.conversation(at(DAY1, 12))  # opened the widget, never wrote
        b.say(f, "bot", "Hi! How can I help?", at(DAY1, 12))

        g = b.conversation(at(DAY1 - timedelta(days=10), 12))
        b.customer(g, "old news", at(DAY1 - timedelta(days=10), 12), -0.9, "nlu_fallback")

        w.ids = {"A": a.id, "B": c_b.id, "C": c.id, "D": d.id, "E": e.id, "F": f.id, "G": g.id}
    return w


def two_days(tz: Any = UTC) -> Period:
    return Period(DAY1, DAY2, tz)


def report(engine: Engine, tz: Any = UTC) -> dict[str, Any]:
    with session_scope(engine) as session:
        return build_report(session, two_days(tz))


# ------------------------------------------------------------------ reports


def test_outcome_shares_add_up_over_conversations_with_customer_messages(
    engine: Engine, world: World
) -> None:
    outcomes = report(engine)["outcomes"]
    assert outcomes["total"] == 5  # F has no customer message, G is outside the period
    assert {k: outcomes[k]["count"] for k in ("bot", "handed_off", "ticket")} == {
        "bot": 1,
        "handed_off": 3,
        "ticket": 1,
    }
    assert outcomes["handed_off"]["share"] == pytest.approx(0.6)
    assert sum(outcomes[k]["share"] for k in ("bot", "handed_off", "ticket")) == pytest.approx(1)


def test_sentiment_per_day_fallback_rate_intents_and_csat(engine: Engine, world: World) -> None:
    figures = report(engine)
    assert figures["period"] == {"from": "2026-03-02", "to": "2026-03-03"}
    days = {d["day"]: d for d in figures["sentiment_per_day"]}
    assert days["2026-03-02"]["messages"] == 4
    assert days["2026-03-02"]["average"] == pytest.approx((0.6 + 0.4 - 0.8 - 0.6) / 4)
    assert days["2026-03-03"]["messages"] == 3
    assert days["2026-03-03"]["average"] == pytest.approx((-0.3 + 0.0 - 0.5) / 3, abs=1e-4)
    # 7 customer messages read by the bot; 2 nlu_fallback + 1 out_of_scope.
    assert figures["fallback_rate"] == pytest.approx(3 / 7)
    assert figures["top_intents"][0] == {"intent": "nlu_fallback", "count": 2}
    assert len(figures["top_intents"]) == 6
    assert figures["csat"] == {
        "average": 4.5,
        "count": 2,
        "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }


def test_escalations_by_reason_and_wait_to_first_reply(engine: Engine, world: World) -> None:
    figures = report(engine)
    by_reason = {r["reason"]: r for r in figures["escalations_by_reason"]}
    assert figures["escalations_by_reason"][0]["reason"] == "fallbacks"
    assert {name: r["count"] for name, r in by_reason.items()} == {
        "fallbacks": 2,
        "negative_streak": 1,
        "large_cancellation": 1,
        "request_human": 1,
    }
    assert by_reason["request_human"]["label"] == "Asked for a person"
    # Waits 30 s (the internal note does not count), 90 s and 150 s; the ticket has none.
    wait = figures["wait_to_first_reply"]
    assert wait == {"p50": 90.0, "p90": pytest.approx(138.0), "count": 3}


def test_busiest_hours_follow_the_business_timezone(engine: Engine, world: World) -> None:
    utc_hours = {h["hour"]: h["messages"] for h in report(engine)["busiest_hours"]}
    assert len(utc_hours) == 24
    assert (utc_hours[10], utc_hours[14], utc_hours[9], utc_hours[16]) == (2, 2, 1, 1)
    # Chicago is UTC-6 in early March; local days shift, so look at a wider local period.
    with session_scope(engine) as session:
        local = build_report(session, Period(DAY1 - timedelta(days=1), DAY2, CHICAGO))
    hours = {h["hour"]: h["messages"] for h in local["busiest_hours"]}
    assert (hours[4], hours[8], hours[3], hours[10]) == (2, 2, 1, 1)
    assert max(hours, key=lambda h: (hours[h], -h)) == 4


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10], 0.9) == 10
    assert percentile([30, 90, 150], 0.5) == 90
    assert percentile([150, 30, 90], 0.9) == pytest.approx(138)


def test_periods_default_to_the_last_30_days_and_refuse_bad_dates() -> None:
    now = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # still March 2 in Chicago
    period = make_period(None, None, CHICAGO, now=now)
    assert (period.start, period.end) == (date(2026, 2, 1), date(2026, 3, 2))
    with pytest.raises(ReportError, match="YYYY-MM-DD"):
        make_period("03/02/2026", None, UTC)
    with pytest.raises(ReportError, match="after it ends"):
        make_period("2026-03-05", "2026-03-01", UTC)


# ------------------------------------------------------------------ the log


def run_log(engine: Engine, masking: bool = False, **params: str) -> dict[str, Any]:
    page, size = parse_page(params.pop("page", None), params.pop("page_size", None))
    filters = parse_filters({"from": "2026-03-02", "to": "2026-03-03", **params}, UTC)
    with session_scope(engine) as session:
        return log.query_log(session, filters, page=page, page_size=size, masker=Masker(masking))


def letters(world: World, result: dict[str, Any]) -> list[str]:
    names = {v: k for k, v in world.ids.items()}
    return [names[c["id"]] for c in result["conversations"]]


def test_log_lists_newest_first_with_the_contract_fields(engine: Engine, world: World) -> None:
    result = run_log(engine)
    assert result["total"] == 5 and (result["page"], result["page_size"]) == (1, 50)
    assert letters(world, result) == ["E", "D", "C", "B", "A"]
    b = next(c for c in result["conversations"] if c["id"] == world.ids["B"])
    assert b["outcome"] == "handed_off" and b["state"] == "closed"
    assert b["customer"] == {"label": "Jane Doe", "tier": "vip", "lifetime_value": 2500.0}
    assert b["staff"] == {"id": world.staff1, "name": "Ann"}
    assert b["reasons"] == ["fallbacks", "negative_streak"]
    assert b["reason_texts"] == ["the bot did not understand twice", "3 negative messages in a row"]
    assert b["avg_sentiment"] == pytest.approx(-0.7)
    assert b["min_sentiment"] == pytest.approx(-0.8)
    assert b["timeline"] == [-0.8, -0.6]
    assert b["mood"] == {"frustration": 0.8}
    assert b["csat"] == 4
    assert b["message_count"] == 4  # two from Jane, a note, a reply
    a = next(c for c in result["conversations"] if c["id"] == world.ids["A"])
    assert a["customer"]["label"] == "Visitor" and a["staff"] is None and a["mood"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"outcome": "bot"}, ["A"]),
        ({"outcome": "ticket"}, ["C"]),
        ({"outcome": "open"}, ["D"]),
        ({"outcome": "handed_off"}, ["E", "B"]),
        ({"sentiment": "positive"}, ["A"]),
        ({"sentiment": "negative"}, ["E", "C", "B"]),
        ({"sentiment": "neutral"}, ["D"]),
        ({"reason": "fallbacks"}, ["E", "B"]),
        ({"reason": "legal"}, []),
        ({"tier": "VIP"}, ["B"]),
        ({"q": "MANAGER"}, ["B"]),
        ({"q": "hyperlink"}, ["E"]),
        ({"q": "100%"}, []),
        ({"q": "Ann here"}, ["D"]),
        ({"from": "2026-03-03"}, ["E", "D", "C"]),
        ({"to": "2026-03-02"}, ["B", "A"]),
    ],
)
def test_log_filters(
    engine: Engine, world: World, params: dict[str, str], expected: list[str]
) -> None:
    assert letters(world, run_log(engine, **params)) == expected


def test_log_filters_by_staff_member_and_pages(engine: Engine, world: World) -> None:
    assert letters(world, run_log(engine, staff_id=str(world.staff1))) == ["D", "B"]
    assert letters(world, run_log(engine, staff_id=str(world.staff2))) == ["E"]
    page = run_log(engine, page="2", page_size="2")
    assert page["total"] == 5 and letters(world, page) == ["C", "B"]
    assert run_log(engine, page="9")["conversations"] == []
    # Paging after a filter that is decided from events, not SQL.
    negative = run_log(engine, sentiment="negative", page="2", page_size="2")
    assert negative["total"] == 3 and letters(world, negative) == ["B"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"outcome": "won"}, "outcome"),
        ({"sentiment": "angry"}, "sentiment"),
        ({"reason": "DROP TABLE"}, "reason"),
        ({"staff_id": "ann"}, "staff_id"),
        ({"tier": "platinum"}, "tier"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_filters_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ReportError) as caught:
        parse_filters(params, UTC)
    assert caught.value.field == field


def test_bad_pages_are_refused() -> None:
    for page, size in (("0", None), ("x", None), (None, "500"), (None, "-1")):
        with pytest.raises(ReportError):
            parse_page(page, size)


def test_detail_masks_personal_data(engine: Engine, world: World) -> None:
    with session_scope(engine) as session:
        masked = log.conversation_detail(session, world.ids["B"], Masker(True))
        plain = log.conversation_detail(session, world.ids["B"], Masker(False))
    assert masked["masked"] is True and plain["masked"] is False
    assert masked["conversation"]["customer"]["label"] == "[NAME]"
    texts = " ".join(m["text"] for m in masked["messages"])
    assert "jane@example.com" not in texts and "Jane" not in texts
    assert "[EMAIL]" in texts and "[NAME]" in texts
    assert "jane@example.com" in " ".join(m["text"] for m in plain["messages"])
    first = masked["messages"][0]
    assert first["sender"] == "customer" and first["intent"] == "nlu_fallback"
    assert first["sentiment_score"] == pytest.approx(-0.8)
    assert first["negative"] == pytest.approx(0.8)
    kinds = [e["kind"] for e in masked["events"]]
    assert kinds[0] == "created" and "escalation" in kinds
    assert masked["escalations"] == [
        {
            "at": masked["escalations"][0]["at"],
            "reasons": ["the bot did not understand twice", "3 negative messages in a row"],
            "triggers": ["fallbacks", "negative_streak"],
            "priority": 3,
        }
    ]
    # A ticket's contact name is masked too.
    with session_scope(engine) as session:
        detail = log.conversation_detail(session, world.ids["C"], Masker(True))
    assert detail["conversation"]["outcome"] == "ticket"


def test_masked_log_label(engine: Engine, world: World) -> None:
    result = run_log(engine, masking=True, tier="vip")
    assert result["conversations"][0]["customer"]["label"] == "[NAME]"


# ------------------------------------------------------------------ exports


def export_rows(engine: Engine, kind: str, masking: bool, **params: str) -> list[dict[str, str]]:
    filters: LogFilters = parse_filters({"from": "2026-03-02", "to": "2026-03-03", **params}, UTC)
    text = "".join(export.stream_csv(lambda: session_scope(engine), kind, filters, Masker(masking)))
    return list(csv.DictReader(io.StringIO(text)))


def test_conversation_export_matches_the_log(engine: Engine, world: World) -> None:
    rows = export_rows(engine, "conversations", masking=True)
    assert [r["conversation_id"] for r in rows] == [world.ids[k] for k in ("E", "D", "C", "B", "A")]
    b = rows[3]
    assert (b["customer"], b["tier"], b["staff"], b["outcome"]) == (
        "[NAME]",
        "vip",
        "Ann",
        "handed_off",
    )
    assert b["reasons"] == "fallbacks; negative_streak"
    assert b["avg_sentiment"] == "-0.7"  # our own negative numbers are not defused
    assert rows[4]["customer"] == "Visitor"
    assert export_rows(engine, "conversations", False, outcome="ticket")[0]["outcome"] == "ticket"


def test_message_export_is_masked_and_defused(engine: Engine, world: World) -> None:
    rows = export_rows(engine, "messages", masking=True)
    texts = [r["text"] for r in rows]
    assert not any("jane@example.com" in t for t in texts)
    assert any("[EMAIL]" in t for t in texts)
    formula = next(r for r in rows if "HYPERLINK" in r["text"])
    assert formula["text"].startswith("'=")
    assert formula["intent"] == "out_of_scope"
    plus = next(r for r in rows if "that link is not ours" in r["text"])
    assert plus["text"].startswith("'+")
    assert {r["sender"] for r in rows} >= {"customer", "staff", "bot"}
    only_b = export_rows(engine, "messages", False, tier="vip")
    assert {r["conversation_id"] for r in only_b} == {world.ids["B"]}
    assert any("jane@example.com" in r["text"] for r in only_b)


def test_safe_cell() -> None:
    assert export.safe_cell("=1+1") == "'=1+1"
    assert export.safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert export.safe_cell("-2") == "'-2"
    assert export.safe_cell("\t=x") == "'\t=x"
    assert export.safe_cell(-0.5) == "-0.5"
    assert export.safe_cell(None) == ""
    assert export.safe_cell("fine") == "fine"
