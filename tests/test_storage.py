"""Conversation storage and the state machine, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, inspect, select

from tandem.conversations import service
from tandem.conversations.models import ConversationEvent, Message
from tandem.conversations.states import ALLOWED, InvalidTransition, State
from tandem.db import session_scope


def test_migrations_create_every_table(engine: Engine) -> None:
    from tandem.models import Base

    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_conversation_is_created_with_an_event(engine: Engine) -> None:
    with session_scope(engine) as session:
        conversation = service.create_conversation(session, channel="widget")
        conversation_id = conversation.id
    with session_scope(engine) as session:
        stored = service.get_conversation(session, conversation_id)
        assert stored.state == State.BOT
        assert stored.channel == "widget"
        assert stored.created_at.tzinfo is not None
        kinds = [e.kind for e in stored.events]
        assert kinds == ["created"]


def test_unknown_conversation_raises(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(service.ConversationNotFound):
        service.get_conversation(session, "nope")


def test_messages_keep_order_text_and_nlu(engine: Engine) -> None:
    text = "Où est ma commande 10482? 😡 <b>now</b>"
    with session_scope(engine) as session:
        conversation = service.create_conversation(session)
        first, created = service.add_message(session, conversation, sender="customer", text=text)
        assert created
        service.record_nlu(
            first,
            {
                "intent": {"name": "order_status", "confidence": 0.93},
                "entities": [
                    {
                        "entity": "order_number",
                        "value": "10482",
                        "start": 19,
                        "end": 24,
                        "extractor": "RegexEntityExtractor",
                        "extra": "dropped",
                    }
                ],
            },
        )
        service.add_message(
            session,
            conversation,
            sender="bot",
            text="Let me check.",
            payload={"buttons": [{"title": "Yes", "payload": "/affirm"}]},
        )
        conversation_id = conversation.id
    with session_scope(engine) as session:
        messages = service.list_messages(session, conversation_id)
        assert [m.sender for m in messages] == ["customer", "bot"]
        assert messages[0].text == text
        assert messages[0].intent == "order_status"
        assert messages[0].intent_confidence == pytest.approx(0.93)
        assert messages[0].entities == [
            {
                "entity": "order_number",
                "value": "10482",
                "start": 19,
                "end": 24,
                "extractor": "RegexEntityExtractor",
            }
        ]
        assert messages[1].payload == {"buttons": [{"title": "Yes", "payload": "/affirm"}]}
        assert service.list_messages(session, conversation_id, after_id=messages[0].id) == [
            messages[1]
        ]


def test_a_resent_client_message_is_stored_once(engine: Engine) -> None:
    with session_scope(engine) as session:
        conversation_id = service.create_conversation(session).id

    def send() -> tuple[int, bool]:
        with session_scope(engine) as session:
            conversation = service.get_conversation(session, conversation_id)
            message, created = service.add_message(
                session, conversation, sender="customer", text="hi", client_message_id="c-1"
            )
            return message.id, created

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: send(), range(4)))
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with session_scope(engine) as session:
        count = len(session.scalars(select(Message)).all())
        assert count == 1


@pytest.mark.parametrize(
    ("start", "target"),
    [(s, t) for s in State for t in State if t not in ALLOWED[s] and t is not s][:6],
)
def test_forbidden_transitions_are_refused_and_leave_no_event(
    engine: Engine, start: State, target: State
) -> None:
    with session_scope(engine) as session:
        conversation = service.create_conversation(session)
        conversation.state = start.value
        before = len(conversation.events)
        with pytest.raises(InvalidTransition):
            service.transition(session, conversation, target, actor="system", reason="test")
        assert conversation.state == start.value
        session.flush()
        assert (
            len(
                session.scalars(
                    select(ConversationEvent).where(
                        ConversationEvent.conversation_id == conversation.id
                    )
                ).all()
            )
            == before
        )


def test_every_transition_is_an_event_with_who_and_why(engine: Engine) -> None:
    path = [
        (State.QUEUED, "bot", "asked for a person"),
        (State.WITH_STAFF, "staff:1", "claimed"),
        (State.BOT, "staff:1", "returned to the bot"),
        (State.CLOSED, "staff:1", "resolved"),
        (State.BOT, "customer", "wrote again"),
    ]
    with session_scope(engine) as session:
        conversation = service.create_conversation(session)
        for target, actor, reason in path:
            service.transition(session, conversation, target, actor=actor, reason=reason)
        conversation_id = conversation.id
    with session_scope(engine) as session:
        events = [
            e
            for e in service.get_conversation(session, conversation_id).events
            if e.kind == "state_changed"
        ]
        assert [(e.from_state, e.to_state, e.actor, e.reason) for e in events] == [
            ("bot", "queued", "bot", "asked for a person"),
            ("queued", "with_staff", "staff:1", "claimed"),
            ("with_staff", "bot", "staff:1", "returned to the bot"),
            ("bot", "closed", "staff:1", "resolved"),
            ("closed", "bot", "customer", "wrote again"),
        ]


def test_identification_is_recorded_once(engine: Engine) -> None:
    from tandem.business.models import Customer

    with session_scope(engine) as session:
        customer = Customer(
            name="Ada Lovelace", email="ada@example.com", tier="vip", lifetime_value=1200
        )
        session.add(customer)
        session.flush()
        conversation = service.create_conversation(session)
        service.mark_identified(session, conversation, customer_id=customer.id, via="order_lookup")
        service.mark_identified(session, conversation, customer_id=customer.id, via="order_lookup")
        assert conversation.customer_verified
        assert [e.kind for e in conversation.events].count("identified") == 1
