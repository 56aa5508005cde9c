"""The one state machine of a conversation.

    bot -> queued -> with_staff -> bot | closed
    queued -> offline_ticket
    closed -> bot (the customer's next message reopens it)

Every allowed move is listed here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    WITH_STAFF = "with_staff"
    OFFLINE_TICKET = "offline_ticket"
    CLOSED = "closed"


ALLOWED: dict[State, frozenset[State]] = {
    State.BOT: frozenset({State.QUEUED, State.OFFLINE_TICKET, State.CLOSED}),
    State.QUEUED: frozenset({State.WITH_STAFF, State.OFFLINE_TICKET, State.BOT, State.CLOSED}),
    State.WITH_STAFF: frozenset({State.BOT, State.QUEUED, State.CLOSED}),
    State.OFFLINE_TICKET: frozenset({State.BOT, State.WITH_STAFF, State.CLOSED}),
    State.CLOSED: frozenset({State.BOT}),
}

# States in which customer messages go to Rasa.
BOT_HANDLES: frozenset[State] = frozenset({State.BOT, State.CLOSED})


class InvalidTransition(ValueError):
    def __init__(self, current: State, target: State) -> None:
        super().__init__(f"a conversation cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: State, target: State) -> None:
    if target not in ALLOWED[current]:
        raise InvalidTransition(current, target)
