"""Personal data: masking, unmasking (audited), one customer's export and deletion,
retention - storage on SQLite and PostgreSQL - and the CLI."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tandem.business.models import Booking, Customer, Order, OrderItem
from tandem.business.seed import seed_demo
from tandem.config import PROJECT_ROOT
from tandem.conversations.models import Conversation, ConversationEvent, Message, Ticket
from tandem.db import session_scope, utcnow
from tandem.privacy import mask_many, mask_text, service
from tandem.privacy.masking import Vocabulary
from tandem.privacy.retention import purge_old_transcripts
from tandem.staff.models import AuditLog

# ------------------------------------------------------------------------- masking


def test_masks_names_and_places() -> None:
    assert mask_text("Hi, I am Anna Schmidt and I live in London.") == (
        "Hi, I am [NAME] and I live in [PLACE]."
    )
    assert mask_text("my name is sarah jones, from Paris, France") == (
        "my name is [NAME], from [PLACE], [PLACE]"
    )


def test_known_names_are_masked_whatever_the_case() -> None:
    # The small model tags "Marcus Reed" as ORG in some sentences; the known name catches it.
    text = "MARCUS REED here. marcus again, about Reed's order"
    masked = mask_text(text, known_names=["Marcus Reed"])
    assert "marcus" not in masked.lower() and "reed" not in masked.lower()
    assert masked.startswith("[NAME] here.")
    # Whole words only: "Reedy" is not "Reed".
    assert mask_text("a reedy voice", known_names=["Marcus Reed"]) == "a reedy voice"


def test_masks_email() -> None:
    assert mask_text("write to olivia.bennett+shop@example.co.uk please") == (
        "write to [EMAIL] please"
    )


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 123-4567",
        "(312) 555-0110",
        "555-123-4567",
        "555.123.4567",
        "5551234567",
        "+44 20 7946 0958",
        "+49 30 1234567",
        "020 7946 0958",
    ],
)
def test_masks_phone_numbers(phone: str) -> None:
    assert mask_text(f"call me on {phone} today") == "call me on [PHONE] today"


def test_card_numbers_are_masked_only_when_luhn_valid() -> None:
    assert mask_text("card 4111 1111 1111 1111 ok") == "card [CARD] ok"
    assert mask_text("card 4111-1111-1111-1111") == "card [CARD]"
    assert mask_text("card 5500005555555559") == "card [CARD]"
    # 16 random digits failing the Luhn check are not a card.
    assert mask_text("ref 1234 5678 9012 3456") == "ref 1234 5678 9012 3456"
    assert mask_text("ref 1234567890123456") == "ref 1234567890123456"


def test_order_numbers_prices_and_dates_are_kept() -> None:
    text = "Order A1001 and 10003 (10001 10002) cost $49.99 and $1,299.00 on 2026-11-18."
    assert mask_text(text) == text


def test_product_names_survive_with_the_business_vocabulary() -> None:
    with (PROJECT_ROOT / "data" / "demo" / "products.csv").open() as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    # The gateway always masks with the shop's own words (privacy.service.business_vocabulary);
    # the model alone takes some product names for places ("Linen Button-Down Shirt": FAC).
    words = Vocabulary(names)
    masked = mask_many([f"Is the {name} in stock in size M?" for name in names], vocabulary=words)
    assert masked == [f"Is the {name} in stock in size M?" for name in names]
    for name in ("Linen Button-Down Shirt", "Classic Denim Jacket", "Suede Ankle Boots"):
        assert mask_text(f"Where is my {name}?", vocabulary=words) == f"Where is my {name}?"


def test_empty_and_trivial_texts() -> None:
    assert mask_text("") == ""
    assert mask_text("   ") == "   "
    assert mask_text("👍 12345") == "👍 12345"
    assert mask_many([]) == []


def test_mask_many_matches_mask_text() -> None:
    texts = ["Hi I'm Anna Schmidt from London", "", "call 555-123-4567", "marcus here"]
    names = ["Marcus Reyes"]
    assert mask_many(texts, names) == [mask_text(t, names) for t in texts]


# ------------------------------------------------------------------------- storage

NOW = utcnow()


def add_conversation(
    session: Session,
    customer_id: int | None,
    texts: list[str],
    *,
    state: str = "closed",
    age_days: float = 0,
    ticket_email: str | None = None,
) -> str:
    when = NOW - timedelta(days=age_days)
    conversation = Conversation(
        customer_id=customer_id,
        state=state,
        created_at=when,
        updated_at=when,
        closed_at=when if state == "closed" else None,
        csat=5,
    )
    session.add(conversation)
    session.flush()
    for text in texts:
        session.add(
            Message(conversation_id=conversation.id, sender="customer", text=text, created_at=when)
        )
    session.add(
        ConversationEvent(
            conversation_id=conversation.id, kind="state", actor="bot", created_at=when
        )
    )
    if ticket_email:
        session.add(
            Ticket(
                conversation_id=conversation.id,
                status="open",
                email=ticket_email,
                created_at=when,
                updated_at=when,
            )
        )
    session.flush()
    # Bypass onupdate so the ages stick.
    conversation.updated_at = when
    session.flush()
    return conversation.id


@pytest.fixture
def shop(engine: Engine) -> Engine:
    with session_scope(engine) as session:
        seed_demo(session)
    return engine


def customer_by_email(session: Session, email: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.email == email))
    assert customer is not None
    return customer


def count(session: Session, model: type, *where: object) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_unmask_returns_the_original_and_is_audited(shop: Engine) -> None:
    with session_scope(shop) as session:
        olivia = customer_by_email(session, "olivia.bennett@example.com")
        cid = add_conversation(session, olivia.id, ["I'm Olivia Bennett, 555-123-4567"])
    with session_scope(shop) as session:
        with pytest.raises(service.PrivacyError):
            service.unmask_conversation(session, cid, None, " x ")
        with pytest.raises(service.ConversationNotFound):
            service.unmask_conversation(session, "nope", None, "customer complaint")
        result = service.unmask_conversation(session, cid, None, "customer complaint")
        assert [m["text"] for m in result.messages] == ["I'm Olivia Bennett, 555-123-4567"]
        audit_id = result.audit_id
    with session_scope(shop) as session:
        entry = session.get(AuditLog, audit_id)
        assert entry is not None
        assert (entry.action, entry.target) == ("unmask", cid)
        assert entry.detail == {"reason": "customer complaint"}


def test_find_customers(shop: Engine) -> None:
    with session_scope(shop) as session:
        olivia = customer_by_email(session, "olivia.bennett@example.com")
        add_conversation(session, olivia.id, ["hi"])
        add_conversation(session, olivia.id, ["hi again"])
        by_name = service.find_customers(session, "OLIVIA")
        assert [c["email"] for c in by_name] == ["olivia.bennett@example.com"]
        assert by_name[0]["conversations"] == 2
        assert service.find_customers(session, str(olivia.id))[0]["id"] == olivia.id
        assert service.find_customers(session, "@example.com")  # many, at most 20
        assert len(service.find_customers(session, "@example.com")) <= 20
        assert service.find_customers(session, "nobody-like-this") == []


def test_export_contains_everything(shop: Engine) -> None:
    with session_scope(shop) as session:
        olivia = customer_by_email(session, "olivia.bennett@example.com")
        cid = add_conversation(
            session, olivia.id, ["where is 10001?"], ticket_email="olivia.bennett@example.com"
        )
        other = add_conversation(session, None, ["anon"], ticket_email="Olivia.Bennett@example.com")
        data = service.export_customer(session, olivia.id)
        customer_id = olivia.id
        json.dumps(data)  # JSON-ready
    assert data["customer"]["email"] == "olivia.bennett@example.com"
    assert {o["number"] for o in data["orders"]} >= {"10001", "10002"}
    assert all(o["items"] for o in data["orders"])
    [conversation] = data["conversations"]
    assert conversation["id"] == cid and conversation["csat"] == 5
    assert [m["text"] for m in conversation["messages"]] == ["where is 10001?"]
    assert len(conversation["events"]) == 1 and len(conversation["tickets"]) == 1
    assert [t["conversation_id"] for t in data["tickets_by_email"]] == [other]
    with session_scope(shop) as session:
        entry = service.list_audit(session, limit=1)[0]
        assert (entry.action, entry.target) == ("export_customer", f"customer:{customer_id}")
    with session_scope(shop) as session, pytest.raises(service.CustomerNotFound):
        service.export_customer(session, 999_999)


def test_delete_removes_everything_and_only_that_customer(shop: Engine) -> None:
    with session_scope(shop) as session:
        olivia = customer_by_email(session, "olivia.bennett@example.com")
        marcus = customer_by_email(session, "marcus.reyes@example.com")
        olivia_id, marcus_id = olivia.id, marcus.id
        mine = add_conversation(
            session, olivia_id, ["a", "b"], ticket_email="olivia.bennett@example.com"
        )
        anon = add_conversation(session, None, ["c"], ticket_email="olivia.bennett@example.com")
        theirs = add_conversation(
            session, marcus_id, ["d"], ticket_email="marcus.reyes@example.com"
        )
        session.add(
            Booking(
                ref="BK-TEST",
                customer_name="Olivia Bennett",
                phone="(312) 555-0110",
                customer_id=olivia_id,
                starts_at=NOW,
                duration_minutes=30,
            )
        )
        marcus_orders = count(session, Order, Order.customer_id == marcus_id)
        olivia_orders = count(session, Order, Order.customer_id == olivia_id)
        assert olivia_orders > 0
    with session_scope(shop) as session:
        counts = service.delete_customer(session, olivia_id, None)
    assert counts["conversations"] == 1 and counts["messages"] == 2
    assert counts["tickets"] == 2  # the conversation's and the anonymous one by e-mail
    assert counts["orders"] == olivia_orders and counts["customer"] == 1
    with session_scope(shop) as session:
        assert session.get(Customer, olivia_id) is None
        assert session.get(Conversation, mine) is None
        assert count(session, Message, Message.conversation_id == mine) == 0
        assert count(session, ConversationEvent, ConversationEvent.conversation_id == mine) == 0
        assert count(session, Ticket, Ticket.email == "olivia.bennett@example.com") == 0
        assert count(session, Order, Order.customer_id == olivia_id) == 0
        assert count(session, Booking, Booking.customer_id == olivia_id) == 0
        # The anonymous conversation stays (only its ticket carried her e-mail).
        assert session.get(Conversation, anon) is not None
        # Someone else's data is untouched.
        assert session.get(Customer, marcus_id) is not None
        assert session.get(Conversation, theirs) is not None
        assert count(session, Message, Message.conversation_id == theirs) == 1
        assert count(session, Ticket, Ticket.conversation_id == theirs) == 1
        assert count(session, Order, Order.customer_id == marcus_id) == marcus_orders
        assert count(session, OrderItem) > 0
        entry = service.list_audit(session, limit=1)[0]
        assert entry.action == "delete_customer"
        assert entry.target == f"customer:{olivia_id}"
        assert "olivia" not in json.dumps(entry.detail).lower()
    with session_scope(shop) as session, pytest.raises(service.CustomerNotFound):
        service.delete_customer(session, olivia_id, None)


def test_retention_deletes_only_old_inactive_conversations(shop: Engine) -> None:
    with session_scope(shop) as session:
        old_closed = add_conversation(session, None, ["old"], state="closed", age_days=40)
        old_bot = add_conversation(session, None, ["old bot"], state="bot", age_days=40)
        old_queued = add_conversation(session, None, ["waiting"], state="queued", age_days=40)
        old_staff = add_conversation(session, None, ["talking"], state="with_staff", age_days=40)
        recent = add_conversation(session, None, ["new"], state="closed", age_days=5)
        recent_bot = add_conversation(session, None, ["new bot"], state="bot", age_days=1)
        kept_with_old_ticket = add_conversation(session, None, ["x"], state="bot", age_days=1)
        session.add(
            Ticket(
                conversation_id=kept_with_old_ticket,
                status="resolved",
                created_at=NOW - timedelta(days=50),
                updated_at=NOW - timedelta(days=50),
            )
        )
    with session_scope(shop) as session:
        assert purge_old_transcripts(session, 0, NOW).deleted == 0  # 0 = keep forever
        dry = purge_old_transcripts(session, 30, NOW, dry_run=True)
        assert dry.conversations == 2 and dry.tickets == 1
        assert session.get(Conversation, old_closed) is not None
    with session_scope(shop) as session:
        result = purge_old_transcripts(session, 30, NOW)
    assert (result.conversations, result.messages, result.tickets) == (2, 2, 1)
    with session_scope(shop) as session:
        remaining = set(session.scalars(select(Conversation.id)))
        assert old_closed not in remaining and old_bot not in remaining
        assert {old_queued, old_staff, recent, recent_bot, kept_with_old_ticket} <= remaining
        assert count(session, Message, Message.conversation_id == old_closed) == 0
        assert count(session, Ticket, Ticket.conversation_id == kept_with_old_ticket) == 0
        entry = service.list_audit(session, limit=1)[0]
        assert entry.action == "retention_purge" and entry.actor_user_id is None
        audits = count(session, AuditLog)
    with session_scope(shop) as session:
        assert purge_old_transcripts(session, 30, NOW).deleted == 0
        assert count(session, AuditLog) == audits  # nothing deleted, nothing recorded


# ------------------------------------------------------------------------- CLI


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem.privacy", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def test_cli(tmp_path: Path) -> None:
    from tandem.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        seed_demo(session)
        olivia = customer_by_email(session, "olivia.bennett@example.com")
        olivia_id = olivia.id
        add_conversation(session, olivia_id, ["hello"], age_days=400)
        recent = add_conversation(session, olivia_id, ["hi again"], age_days=1)
    engine.dispose()
    # Rasa's SQL tracker store keeps its own copy of the transcript.
    tracker = tmp_path / "rasa-tracker.db"
    with sqlite3.connect(tracker) as rasa:
        rasa.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
        rasa.executemany(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)",
            [(recent, "{}"), (recent, "{}"), ("someone-else", "{}")],
        )

    assert run_cli(url, "purge", "--days", "-1").returncode == 2
    assert run_cli(url, "export-customer", "abc").returncode == 2
    assert run_cli(url, "delete-customer", str(olivia_id)).returncode == 2  # no --yes
    assert run_cli(url, "export-customer", "999999").returncode == 1

    exported = run_cli(url, "export-customer", str(olivia_id))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["customer"]["id"] == olivia_id

    dry = run_cli(url, "purge", "--days", "365", "--dry-run")
    assert dry.returncode == 0 and "Would delete 1 conversation" in dry.stdout
    purged = run_cli(url, "purge", "--days", "365")
    assert purged.returncode == 0 and "Deleted 1 conversation" in purged.stdout

    deleted = run_cli(
        url, "--rasa-tracker-db", str(tracker), "delete-customer", str(olivia_id), "--yes"
    )
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted 2 Rasa tracker event(s)" in deleted.stdout
    with sqlite3.connect(tracker) as rasa:
        assert rasa.execute("SELECT sender_id FROM events").fetchall() == [("someone-else",)]
    assert run_cli(url, "export-customer", str(olivia_id)).returncode == 1


async def test_retention_loop_survives_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from tandem.config import Settings
    from tandem.privacy import retention

    calls: list[int] = []

    def flaky(engine: object, days: int, **_: object) -> retention.PurgeResult:
        calls.append(days)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return retention.PurgeResult(conversations=1)

    monkeypatch.setattr(retention, "purge_once", flaky)
    # 0 days: keep forever, the loop returns at once without touching the database.
    await retention.retention_loop(None, Settings(retention_days=0), 0.01)  # type: ignore[arg-type]
    assert calls == []
    task = asyncio.create_task(
        retention.retention_loop(None, Settings(retention_days=7), 0.01)  # type: ignore[arg-type]
    )
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(calls) >= 3:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3 and set(calls) == {7}
