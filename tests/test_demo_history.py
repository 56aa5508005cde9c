"""The demo conversation history (tandem/business/history.py), on SQLite and PostgreSQL.

The history is stored through the conversation service; these tests replay its events
against the state machine and read it back through the owner reports and the log.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from handoff.policy import load_policy
from tandem.business.history import check_templates, main, seed_history
from tandem.business.profile import BusinessProfile, load_profile
from tandem.business.seed import seed_demo
from tandem.config import PROJECT_ROOT
from tandem.conversations.models import Conversation, ConversationEvent, Message, Ticket
from tandem.conversations.states import ALLOWED, State
from tandem.db import make_engine, migrate, session_scope
from tandem.reports import log
from tandem.reports.service import Masker, build_report, make_period, outcome_of, parse_filters
from tandem.staff.models import StaffUser

# Wednesday 18 March 2026, 4 PM in Chicago: the shop is open, 28 days of history behind.
NOW = datetime(2026, 3, 18, 21, 0, tzinfo=UTC)
DEMO_DATA = PROJECT_ROOT / "data" / "demo"
POLICY = load_policy(PROJECT_ROOT / "handoff.yml")


@pytest.fixture
def profile() -> BusinessProfile:
    return load_profile(PROJECT_ROOT / "business.yml")


def seed(engine: Engine, profile: BusinessProfile, *, now: datetime = NOW, days: int = 28) -> int:
    with session_scope(engine) as session:
        seed_demo(session, DEMO_DATA, profile=profile, now=now)
    with session_scope(engine) as session:
        return seed_history(session, now=now, days=days, profile=profile, policy=POLICY)


def fingerprint(session: Session) -> dict[str, Any]:
    """Counts that must not change between two runs with the same clock."""

    def count(model: type) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    conversations = session.scalars(
        select(Conversation).options(selectinload(Conversation.events))
    ).all()
    return {
        "conversations": count(Conversation),
        "messages": count(Message),
        "events": count(ConversationEvent),
        "tickets": count(Ticket),
        "outcomes": Counter(outcome_of(c) for c in conversations),
        "csat": sorted(c.csat for c in conversations if c.csat is not None),
        "intents": Counter(
            session.scalars(select(Message.intent).where(Message.intent.is_not(None)))
        ),
        "times": sorted(c.created_at.isoformat() for c in conversations),
    }


def test_history_is_consistent_with_the_state_machine(
    engine: Engine, profile: BusinessProfile
) -> None:
    created = seed(engine, profile)
    assert 120 <= created <= 200
    with session_scope(engine) as session:
        conversations = session.scalars(
            select(Conversation).options(
                selectinload(Conversation.events), selectinload(Conversation.messages)
            )
        ).all()
        assert len(conversations) == created
        for conversation in conversations:
            assert conversation.channel == "demo"
            assert all((m.payload or {}).get("demo") is True for m in conversation.messages)
            events = sorted(conversation.events, key=lambda e: e.id)
            assert events[0].kind == "created" and events[0].to_state == State.BOT.value
            state = State.BOT
            for event in events:
                if event.kind != "state_changed":
                    continue
                assert event.from_state == state.value, conversation.id
                target = State(event.to_state)
                assert target in ALLOWED[state], (conversation.id, state, target)
                state = target
            assert conversation.state == state.value
            # Back-dated in order: events and messages never run backwards.
            moments = [e.created_at for e in events]
            assert moments == sorted(moments)
            messages = sorted(conversation.messages, key=lambda m: m.id)
            assert [m.created_at for m in messages] == sorted(m.created_at for m in messages)
            assert conversation.created_at <= messages[0].created_at
            # Everything happened while the shop was open, and before "now".
            for moment in [*moments, *(m.created_at for m in messages)]:
                assert moment < NOW
                assert profile.is_open_at(moment), (conversation.id, moment)
            if any(e.kind == "escalation" for e in events):
                escalation = next(e for e in events if e.kind == "escalation")
                assert escalation.data["reasons"] and escalation.data["decision"]["triggers"]
                assert escalation.data["priority"] == escalation.data["decision"]["priority"]
            if conversation.state == State.CLOSED.value:
                closing = [e for e in events if e.to_state == State.CLOSED.value][-1]
                assert closing.data["resolution"] == conversation.resolution
                assert closing.actor.startswith("staff:")
        tickets = session.scalars(select(Ticket)).all()
        assert tickets and all(t.email and t.name and t.message_ids for t in tickets)
        assert {t.status for t in tickets} <= {"open", "done"}
        assert all(t.resolved_at is not None for t in tickets if t.status == "done")


def test_owner_reports_have_believable_figures(engine: Engine, profile: BusinessProfile) -> None:
    created = seed(engine, profile)
    with session_scope(engine) as session:
        period = make_period(None, None, profile.tz, now=NOW, default_days=28)
        report = build_report(session, period)
    outcomes = report["outcomes"]
    assert outcomes["total"] == created
    shares = [outcomes[name]["share"] for name in ("bot", "handed_off", "ticket")]
    assert all(share > 0 for share in shares)
    assert sum(shares) == pytest.approx(1.0)
    assert 0.55 <= outcomes["bot"]["share"] <= 0.75
    assert 0.2 <= outcomes["handed_off"]["share"] <= 0.35
    wait = report["wait_to_first_reply"]
    assert wait["count"] == outcomes["handed_off"]["count"]
    assert 20 <= wait["p50"] <= 6 * 60 and wait["p90"] <= 7 * 60
    assert 3 <= report["csat"]["average"] <= 5
    assert 0 < report["fallback_rate"] < 0.2
    hours = report["busiest_hours"]
    assert len(hours) == 24 and sum(h["messages"] for h in hours) > 0
    # Earliest opening 10 AM, latest closing 8 PM (business.yml).
    assert all(h["messages"] == 0 for h in hours if not 10 <= h["hour"] < 20)
    assert len(report["top_intents"]) == 10
    reasons = {r["reason"] for r in report["escalations_by_reason"]}
    assert {"human_request", "complaint", "frustration", "fallbacks"} <= reasons
    days_with_data = [d for d in report["sentiment_per_day"] if d["messages"]]
    assert len(days_with_data) >= 20
    assert all(-1 <= d["average"] <= 1 for d in days_with_data)


def test_log_shows_customers_and_demo_staff(engine: Engine, profile: BusinessProfile) -> None:
    seed(engine, profile)
    with session_scope(engine) as session:
        everything = log.query_log(
            session,
            parse_filters({}, profile.tz),
            page=1,
            page_size=200,
            masker=Masker(False),
        )
        rows = everything["conversations"]
        linked = [r for r in rows if r["customer"]["tier"] is not None]
        assert 0 < len(linked) < len(rows) / 2  # some demo customers, mostly visitors
        assert all(r["customer"]["lifetime_value"] > 0 for r in linked)
        handed = [r for r in rows if r["outcome"] == "handed_off"]
        detail = log.conversation_detail(session, handed[0]["id"], Masker(False))
        claimed = next(e for e in detail["events"] if e["to"] == "with_staff")
        # No staff account exists: the claim names a demo person, and the log copes.
        assert claimed["actor"].startswith("staff:demo-") and "(demo)" in claimed["reason"]
        # The log shows the name recorded on the claim, with no account id.
        assert handed[0]["staff"]["id"] is None and "(demo)" in handed[0]["staff"]["name"]
        senders = {m["sender"] for m in detail["messages"]}
        assert {"customer", "bot", "system", "staff"} <= senders


def test_staff_accounts_claim_the_handoffs(engine: Engine, profile: BusinessProfile) -> None:
    with session_scope(engine) as session:
        session.add(StaffUser(email="ana@example.com", display_name="Ana", password_hash="!"))
    seed(engine, profile)
    with session_scope(engine) as session:
        ana = session.scalars(select(StaffUser)).one()
        rows = log.query_log(
            session,
            parse_filters({"staff_id": str(ana.id)}, profile.tz),
            page=1,
            page_size=200,
            masker=Masker(False),
        )
        assert rows["total"] > 0
        assert {r["staff"]["name"] for r in rows["conversations"]} == {"Ana"}
        staff_messages = session.scalars(select(Message).where(Message.sender == "staff")).all()
        assert {m.payload["staff_id"] for m in staff_messages} == {ana.id}


def test_twice_adds_nothing_and_runs_are_deterministic(
    engine: Engine, profile: BusinessProfile, tmp_path: Path
) -> None:
    created = seed(engine, profile)
    with session_scope(engine) as session:
        first = fingerprint(session)
        assert seed_history(session, now=NOW + timedelta(days=1), profile=profile) == 0
        assert fingerprint(session) == first
    # A fresh SQLite database with the same clock gets the very same history.
    url = f"sqlite:///{tmp_path / 'again.db'}"
    migrate(url)
    other = make_engine(url)
    try:
        assert seed(other, profile) == created
        with session_scope(other) as session:
            assert fingerprint(session) == first
    finally:
        other.dispose()


def test_days_scale_the_history(engine: Engine, profile: BusinessProfile) -> None:
    created = seed(engine, profile, days=7)
    assert 20 <= created <= 70
    with session_scope(engine) as session:
        oldest = session.scalar(select(func.min(Conversation.created_at)))
    assert oldest is not None and oldest >= NOW - timedelta(days=7)


def test_templates_agree_with_the_handoff_policy(engine: Engine, profile: BusinessProfile) -> None:
    with session_scope(engine) as session:
        seed_demo(session, DEMO_DATA, profile=profile, now=NOW)
    with session_scope(engine) as session:
        assert check_templates(session, policy=POLICY) == []
        assert session.scalar(select(func.count()).select_from(Conversation)) == 0


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with pytest.raises(SystemExit) as exited:
        main(["--days", "0", "--database-url", url])
    assert exited.value.code == 2
    broken = tmp_path / "broken.yml"
    broken.write_text("seed: [", encoding="utf-8")
    assert main(["--path", str(broken), "--database-url", url]) == 2
    assert "broken.yml" in capsys.readouterr().err
    assert main(["--days", "7", "--database-url", url]) == 0
    assert "demo conversations" in capsys.readouterr().out
    assert main(["--database-url", url]) == 0
    assert "already exist; nothing done" in capsys.readouterr().out
