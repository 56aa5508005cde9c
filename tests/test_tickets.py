"""The ticket inbox: offline requests filed by the real gateway flow (FakeRasa stands in
for Rasa, as in test_handoff_gateway), worked through /api/staff/tickets on SQLite and
PostgreSQL; replies land in the file outbox or on a real SMTP socket; reports."""

from __future__ import annotations

import email
import email.policy
import socketserver
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select

from tandem.config import Settings
from tandem.conversations import service as conversations
from tandem.conversations.models import ConversationEvent, Ticket
from tandem.conversations.states import State
from tandem.db import Base, session_scope
from tandem.reports.service import Period, build_report
from tandem.staff.models import AuditLog
from tandem.tickets import service
from tandem.tickets.models import TicketReply
from tests.test_handoff_gateway import (  # noqa: F401  (fixtures)
    Gateway,
    StaffLogin,
    cheap_hasher,
    database_url,
    make_gateway,
    staff_login,
)

SHOP_MAIL = "hello@marigoldandmoss.example"


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def gw(database_url: str, outbox: Path) -> Iterator[Gateway]:  # noqa: F811
    gateway = make_gateway(database_url, mail_outbox_dir=outbox)
    with gateway.client:
        yield gateway


def offline_ticket(gw: Gateway, contact: str = "jane@example.com") -> tuple[str, int]:
    """A customer asks for a person while nobody is online and leaves their details."""
    chat = gw.chat()
    gw.say(chat, "my parcel arrived damaged, the box was crushed")
    gw.say(chat, "I want to talk to a person")
    assert gw.state(chat) == "offline_ticket"
    gw.say(chat, "Jane Doe")
    gw.say(chat, contact)
    with session_scope(gw.engine) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.conversation_id == chat)).one()
        assert ticket.status == "open"
        return chat, ticket.id


def get(gw: Gateway, who: StaffLogin, path: str) -> Any:
    return gw.client.get(path, headers=who.headers())


def post(gw: Gateway, who: StaffLogin, path: str, body: Any = None) -> Any:
    return gw.client.post(path, json=body if body is not None else {}, headers=who.headers())


def listed(gw: Gateway, who: StaffLogin, query: str = "") -> dict[str, Any]:
    response = get(gw, who, f"/api/staff/tickets{query}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def outbox_files(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def test_an_offline_request_is_listed_read_claimed_answered_and_done(
    gw: Gateway, outbox: Path
) -> None:
    chat, ticket_id = offline_ticket(gw)
    ann = staff_login(gw.engine, "ann@shop.example")

    # The list: the request, no contact details.
    inbox = listed(gw, ann, "?status=open")
    [item] = [t for t in inbox["tickets"] if t["id"] == ticket_id]
    assert item["status"] == "open" and item["has_email"] is True
    assert item["request_excerpt"].startswith("my parcel arrived damaged")
    assert item["reasons"] == ["asked for a person"]
    assert "jane@example.com" not in str(inbox) and "Jane Doe" not in str(inbox)
    assert inbox["counts"] == {"open": 1, "in_progress": 0, "done": 0}
    assert listed(gw, ann, "?status=done")["tickets"] == []

    # Reading it shows the contact, and the read is audited.
    detail = get(gw, ann, f"/api/staff/tickets/{ticket_id}").json()
    assert detail["contact"] == {"name": "Jane Doe", "email": "jane@example.com", "phone": None}
    assert [m["text"] for m in detail["request"]] == [
        "my parcel arrived damaged, the box was crushed",
        "I want to talk to a person",
    ]  # the form's answers (name, address) are not the request
    assert any(m["sender"] == "bot" for m in detail["transcript"])
    with session_scope(gw.engine) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action.like("ticket.%"))).one()
        assert (audit.actor_user_id, audit.target) == (ann.id, f"ticket:{ticket_id}")
        assert audit.detail == {"ticket_id": ticket_id, "conversation_id": chat}

    # Claim: Ann has it; a colleague cannot take it or answer it.
    claimed = post(gw, ann, f"/api/staff/tickets/{ticket_id}/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["ticket"]["status"] == "in_progress"
    assert claimed.json()["ticket"]["assigned"] == {"id": ann.id, "name": "Ann"}
    raj = staff_login(gw.engine, "raj@shop.example")
    taken = post(gw, raj, f"/api/staff/tickets/{ticket_id}/claim")
    assert taken.status_code == 409 and "Ann took ticket" in taken.json()["detail"]
    refused = post(gw, raj, f"/api/staff/tickets/{ticket_id}/reply", {"text": "hi"})
    assert refused.status_code == 403
    assert listed(gw, raj, "?mine=true")["tickets"] == []
    assert [t["id"] for t in listed(gw, ann, "?status=in_progress&mine=true")["tickets"]] == [
        ticket_id
    ]

    # Reply by e-mail: one .eml file in the outbox, readable by the owner only.
    text = "Hi Jane,\n\nSorry about the box. A replacement is on its way today.\n\nAnn"
    sent = post(gw, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": text})
    assert sent.status_code == 200, sent.text
    assert sent.json()["reply"]["transport"] == "file"
    [file] = outbox_files(outbox)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    mail = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "Jane Doe <jane@example.com>"
    assert mail["From"] == f"Marigold & Moss <{SHOP_MAIL}>"
    assert mail["Subject"] == f"Your request to Marigold & Moss (ticket #{ticket_id})"
    assert mail["X-Tandem-Ticket"] == f"ticket-{ticket_id}"
    assert mail.get_content().strip() == text  # type: ignore[attr-defined]
    log = get(gw, ann, f"/api/staff/tickets/{ticket_id}").json()["reply_log"]
    assert [(r["to"], r["body"], r["staff"]["name"]) for r in log] == [
        ("Jane Doe <jane@example.com>", text, "Ann")
    ]

    # Done: out of the open lists, with the time.
    done = post(gw, ann, f"/api/staff/tickets/{ticket_id}/done", {"resolution": "replaced"})
    assert done.status_code == 200, done.text
    assert done.json()["ticket"]["status"] == "done"
    assert done.json()["ticket"]["resolved_at"] is not None
    assert [t["id"] for t in listed(gw, ann, "?status=done")["tickets"]] == [ticket_id]
    assert listed(gw, ann)["counts"] == {"open": 0, "in_progress": 0, "done": 1}
    again = post(gw, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": "one more"})
    assert again.status_code == 409
    assert post(gw, ann, f"/api/staff/tickets/{ticket_id}/done").status_code == 409
    assert len(outbox_files(outbox)) == 1

    with session_scope(gw.engine) as session:
        kinds = session.scalars(
            select(ConversationEvent.kind)
            .where(ConversationEvent.conversation_id == chat)
            .where(ConversationEvent.kind.like("ticket_%"))
            .order_by(ConversationEvent.id)
        ).all()
        assert kinds == ["ticket_opened", "ticket_claimed", "ticket_replied", "ticket_done"]


def test_the_owner_may_answer_and_finish_a_colleagues_ticket(gw: Gateway, outbox: Path) -> None:
    _, ticket_id = offline_ticket(gw)
    ann = staff_login(gw.engine, "ann@shop.example")
    boss = staff_login(gw.engine, "boss@shop.example", role="owner")
    assert post(gw, ann, f"/api/staff/tickets/{ticket_id}/claim").status_code == 200
    reply = post(gw, boss, f"/api/staff/tickets/{ticket_id}/reply", {"text": "From the owner"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["ticket"]["assigned"]["id"] == ann.id  # still Ann's
    assert post(gw, boss, f"/api/staff/tickets/{ticket_id}/done").status_code == 200
    assert len(outbox_files(outbox)) == 1


def test_a_phone_only_ticket_cannot_be_answered_by_e_mail(gw: Gateway, outbox: Path) -> None:
    _, ticket_id = offline_ticket(gw, contact="(312) 555-0199")
    ann = staff_login(gw.engine, "ann@shop.example")
    assert listed(gw, ann)["tickets"][0]["has_email"] is False
    refused = post(gw, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": "hello"})
    assert refused.status_code == 409
    assert "no e-mail address" in refused.json()["detail"]
    assert "3125550199" in refused.json()["detail"]  # call them instead
    assert outbox_files(outbox) == []
    assert post(gw, ann, f"/api/staff/tickets/{ticket_id}/done").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/staff/tickets?status=closed", None, 422),
        ("get", "/api/staff/tickets/999999", None, 404),
        ("get", "/api/staff/tickets/abc", None, 422),
        ("post", "/api/staff/tickets/{id}/reply", {"text": "   "}, 422),
        ("post", "/api/staff/tickets/{id}/reply", {"text": "x" * 10_001}, 422),
        ("post", "/api/staff/tickets/{id}/reply", {"text": "ok", "subject": "s" * 201}, 422),
        ("post", "/api/staff/tickets/{id}/reply", {}, 422),
        ("post", "/api/staff/tickets/{id}/done", {"resolution": "r" * 2001}, 422),
        ("post", "/api/staff/tickets/999999/claim", None, 404),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    gw: Gateway, outbox: Path, method: str, path: str, body: Any, status: int
) -> None:
    _, ticket_id = offline_ticket(gw)
    ann = staff_login(gw.engine, "ann@shop.example")
    url = path.replace("{id}", str(ticket_id))
    response = get(gw, ann, url) if method == "get" else post(gw, ann, url, body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str | list)
    assert outbox_files(outbox) == []


def test_changes_need_the_csrf_token(gw: Gateway) -> None:
    _, ticket_id = offline_ticket(gw)
    ann = staff_login(gw.engine, "ann@shop.example")
    response = gw.client.post(
        f"/api/staff/tickets/{ticket_id}/claim", headers=ann.headers(csrf=False)
    )
    assert response.status_code == 403
    assert gw.client.get("/api/staff/tickets").status_code == 401


def test_closing_the_conversation_finishes_its_ticket(gw: Gateway) -> None:
    """The desk closes a conversation's tickets with its older word, "resolved"."""
    chat, ticket_id = offline_ticket(gw)
    with session_scope(gw.engine) as session:
        ticket = session.get_one(Ticket, ticket_id)
        ticket.status = "resolved"
        assert (ticket.status, ticket.resolved_at is not None) == ("done", True)
    ann = staff_login(gw.engine, "ann@shop.example")
    assert [t["id"] for t in listed(gw, ann, "?status=done")["tickets"]] == [ticket_id]
    assert chat


def test_a_customers_export_and_erasure_cover_the_replies(gw: Gateway, outbox: Path) -> None:
    from tandem.business.models import Customer
    from tandem.privacy import service as privacy

    _, ticket_id = offline_ticket(gw, contact="olivia.bennett@example.com")
    ann = staff_login(gw.engine, "ann@shop.example")
    text = "Dear Olivia, your refund went out today."
    assert post(gw, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": text}).status_code == 200
    with session_scope(gw.engine) as session:
        olivia = session.scalars(
            select(Customer).where(Customer.email == "olivia.bennett@example.com")
        ).one()
        exported = privacy.export_customer(session, olivia.id)
        [ticket] = [t for t in exported["tickets_by_email"] if t["id"] == ticket_id]
        assert [r["body"] for r in ticket["replies"]] == [text]
        privacy.delete_customer(session, olivia.id, None)
    with session_scope(gw.engine) as session:
        assert session.get(Ticket, ticket_id) is None
        assert session.scalars(select(TicketReply)).all() == []


# ------------------------------------------------------------------ SMTP


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to take one message: a real socket, a tiny server."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-test\r\n250 8BITMIME\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                server.received.append(data)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_replies_go_through_smtp_when_configured(
    database_url: str,  # noqa: F811
    outbox: Path,
    smtp_server: Any,
) -> None:
    port = smtp_server.server_address[1]
    gateway = make_gateway(
        database_url,
        mail_outbox_dir=outbox,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        mail_from="support@shop.example",
    )
    with gateway.client:
        _, ticket_id = offline_ticket(gateway)
        ann = staff_login(gateway.engine, "ann@shop.example")
        sent = post(gateway, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": "By SMTP"})
        assert sent.status_code == 200, sent.text
        assert sent.json()["reply"]["transport"] == "smtp"
        [raw] = smtp_server.received
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert (mail["To"], mail["From"]) == (
            "Jane Doe <jane@example.com>",
            "Marigold & Moss <support@shop.example>",
        )
        assert outbox_files(outbox) == []

        # The server goes away: 502, nothing logged, the ticket unchanged.
        smtp_server.shutdown()
        smtp_server.server_close()
        failed = post(gateway, ann, f"/api/staff/tickets/{ticket_id}/reply", {"text": "again"})
        assert failed.status_code == 502
        assert "did not take the e-mail" in failed.json()["detail"]
        with session_scope(gateway.engine) as session:
            assert len(session.scalars(select(TicketReply)).all()) == 1


def test_mail_settings_are_validated(tmp_path: Path) -> None:
    base: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path / 'x.db'}"}
    with pytest.raises(ValidationError, match="SMTP_PASSWORD"):
        Settings(**base, smtp_host="mail.example", smtp_username="me")
    with pytest.raises(ValidationError, match="SMTP_HOST"):
        Settings(**base, smtp_username="me", smtp_password="pw")
    with pytest.raises(ValidationError):
        Settings(**base, mail_from="not an address")
    with pytest.raises(ValidationError):
        Settings(**base, smtp_security="tls-maybe")
    blank = Settings(**base, smtp_host="", mail_from="")
    assert (blank.smtp_host, blank.mail_from) == (None, None)


# ------------------------------------------------------------------ reports


def test_reports_count_tickets_and_time_to_resolution(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    day = datetime(2026, 11, 24, tzinfo=UTC)
    with session_scope(engine) as session:
        for hours in (1, 2, 5, None):  # three done after 1 h, 2 h and 5 h; one still open
            chat = conversations.create_conversation(session)
            conversations.transition(
                session, chat, State.OFFLINE_TICKET, actor="policy", reason="nobody online"
            )
            ticket = Ticket(conversation_id=chat.id, status="open", created_at=day)
            session.add(ticket)
            session.flush()
            if hours is not None:
                ticket.resolved_at = day + timedelta(hours=hours)
                ticket.status = "done"
        session.add(  # filed before the period: not counted
            Ticket(conversation_id=chat.id, status="done", created_at=day - timedelta(days=3))
        )
    with session_scope(engine) as session:
        figures = build_report(session, Period(day.date(), day.date(), UTC))["tickets"]
    assert figures["count"] == 4 and figures["done"] == 3
    assert figures["time_to_resolution"] == {"p50": 7200.0, "p90": 15840.0, "count": 3}


def test_of_simultaneous_claims_exactly_one_wins(engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tandem.staff import service as staff_service

    Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        chat = conversations.create_conversation(session)
        ticket = Ticket(conversation_id=chat.id, status="open", email="a@b.example")
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id
        ids = [
            staff_service.create_user(
                session, email=f"s{n}@shop.example", password="x" * 12, capacity=1
            ).id
            for n in range(8)
        ]

    def try_claim(staff_id: int) -> str:
        try:
            with session_scope(engine) as session:
                service.claim(session, ticket_id, service.Actor(staff_id, f"s{staff_id}"))
            return "won"
        except service.TicketConflict:
            return "lost"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(try_claim, ids))
    assert sorted(results) == ["lost"] * 7 + ["won"]
    with session_scope(engine) as session:
        winner = ids[results.index("won")]
        assert session.get_one(Ticket, ticket_id).assigned_staff_id == winner


def test_service_refuses_an_unknown_filter(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(service.BadInput):
        service.list_tickets(session, status="closed")


def test_the_migration_keeps_closed_tickets_as_done(tmp_path: Path) -> None:
    """Tickets the desk closed before the inbox existed ("resolved") become "done"."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from tandem.config import PROJECT_ROOT
    from tandem.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "tandem" / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0002")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversations (id, state, channel, customer_verified, created_at,"
                " updated_at) VALUES ('c1', 'closed', 'web', 0, :t, :t)"
            ),
            {"t": "2026-11-20 10:00:00"},
        )
        for status in ("resolved", "open"):
            connection.execute(
                text(
                    "INSERT INTO tickets (conversation_id, status, message_ids, created_at,"
                    " updated_at) VALUES ('c1', :s, '[]', :c, :u)"
                ),
                {"s": status, "c": "2026-11-20 10:00:00", "u": "2026-11-20 12:00:00"},
            )
    command.upgrade(config, "head")
    with session_scope(engine) as session:
        done, still_open = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert (done.status, still_open.status) == ("done", "open")
        assert done.resolved_at == datetime(2026, 11, 20, 12, tzinfo=UTC)
        assert still_open.resolved_at is None and still_open.assigned_staff_id is None
    engine.dispose()
