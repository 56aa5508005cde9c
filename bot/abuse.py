"""The customer API's abuse limits, checked in the views (see tandem/abuse/service.py).

Each check raises RateLimited, which the app answers with 429, a plain detail and
Retry-After (HTTP), or an error frame with `retry_after` (WebSocket).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from bot.clients import client_address
from tandem.abuse.service import AbuseLimits, client_key


def _limits(connection: HTTPConnection) -> AbuseLimits:
    return connection.app.state.limits  # type: ignore[no-any-return]


def _client(connection: HTTPConnection) -> str:
    return client_key(client_address(connection))


async def check_new_conversation(connection: HTTPConnection) -> None:
    await _limits(connection).check(
        "conversation", _client(connection), "Too many new conversations from your address."
    )


async def check_message(connection: HTTPConnection, conversation_id: str) -> None:
    limits = _limits(connection)
    await limits.check(
        "client_message", _client(connection), "Too many messages from your address."
    )
    await limits.check("message", conversation_id, "Too many messages in this conversation.")


async def check_frame(connection: HTTPConnection, socket_id: str) -> None:
    await _limits(connection).check(
        "frame", socket_id, "Too many frames on this connection; slow down."
    )
