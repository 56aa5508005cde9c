"""What the customer-turn flow needs from the dialogue engine (Rasa, through bot/rasa_client).

A protocol, so the flow lives in the service layer and tests inject their own assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class AssistantUnavailable(RuntimeError):
    """The assistant did not answer (down, slow or broken); the turn goes on without it."""


@dataclass
class AssistantTurn:
    """The assistant's replies (Rasa's bot messages) and its reading of the message."""

    parse_data: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


class Assistant(Protocol):
    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> AssistantTurn: ...

    async def resume(self, sender: str) -> bool: ...

    async def is_healthy(self) -> bool: ...

    async def aclose(self) -> None: ...
