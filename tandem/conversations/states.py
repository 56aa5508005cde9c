"""The one state machine of a conversation, as named moves.

    escalate        bot                                   -> queued
    file_ticket     bot, queued                           -> offline_ticket
    claim           queued                                -> with_staff
    transfer        with_staff                            -> with_staff
    return_to_bot   with_staff                            -> bot
    leave_ticket    offline_ticket                        -> bot
    close           bot, queued, with_staff, offline_ticket -> closed
    reopen          closed                                -> bot

`MOVES` below is the table; this docstring and the table agree (a test reads both).
`tandem.conversations.transitions` implements each move: it checks its preconditions,
records its event row and returns its effects. Nothing else changes a conversation's state.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    WITH_STAFF = "with_staff"
    OFFLINE_TICKET = "offline_ticket"
    CLOSED = "closed"


class Move(StrEnum):
    ESCALATE = "escalate"
    FILE_TICKET = "file_ticket"
    CLAIM = "claim"
    TRANSFER = "transfer"
    RETURN_TO_BOT = "return_to_bot"
    LEAVE_TICKET = "leave_ticket"
    CLOSE = "close"
    REOPEN = "reopen"


# move -> (the states it starts from, the state it ends in)
MOVES: dict[Move, tuple[frozenset[State], State]] = {
    Move.ESCALATE: (frozenset({State.BOT}), State.QUEUED),
    Move.FILE_TICKET: (frozenset({State.BOT, State.QUEUED}), State.OFFLINE_TICKET),
    Move.CLAIM: (frozenset({State.QUEUED}), State.WITH_STAFF),
    Move.TRANSFER: (frozenset({State.WITH_STAFF}), State.WITH_STAFF),
    Move.RETURN_TO_BOT: (frozenset({State.WITH_STAFF}), State.BOT),
    Move.LEAVE_TICKET: (frozenset({State.OFFLINE_TICKET}), State.BOT),
    Move.CLOSE: (
        frozenset({State.BOT, State.QUEUED, State.WITH_STAFF, State.OFFLINE_TICKET}),
        State.CLOSED,
    ),
    Move.REOPEN: (frozenset({State.CLOSED}), State.BOT),
}

# Every state change some move makes (derived: the table above is the only source).
ALLOWED: dict[State, frozenset[State]] = {
    state: frozenset(
        target
        for sources, target in MOVES.values()
        if state in sources and target is not state
    )
    for state in State
}

# States in which customer messages go to Rasa.
BOT_HANDLES: frozenset[State] = frozenset({State.BOT, State.CLOSED})


class InvalidTransition(ValueError):
    def __init__(self, current: State, target: State, move: Move | None = None) -> None:
        what = f"{move} a conversation that is {current}" if move else (
            f"move a conversation from {current} to {target}"
        )
        super().__init__(f"cannot {what}")
        self.current = current
        self.target = target
        self.move = move


def check_transition(current: State, target: State) -> None:
    if target not in ALLOWED[current]:
        raise InvalidTransition(current, target)


def check_move(move: Move, current: State) -> State:
    """The state `move` leads to from `current`, or InvalidTransition."""
    sources, target = MOVES[move]
    if current not in sources:
        raise InvalidTransition(current, target, move)
    return target
