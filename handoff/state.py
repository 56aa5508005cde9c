"""The typed handoff state a conversation carries between turns.

Stored as JSON on `conversations.handoff`; `tandem.conversations.service.load_handoff` and
`save_handoff` are the only places that read and write that column. Unknown keys in old
rows are dropped on load, so a stored row can never break a turn.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OfflineStep = Literal["name", "contact", "done"]


class HandoffState(BaseModel):
    """What the per-turn step and the desk remember about one conversation."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    # The per-turn step (handoff.turn.decide_turn).
    negative_streak: int = Field(0, ge=0, description="negative customer turns in a row")
    fallback_streak: int = Field(0, ge=0, description="bot fallbacks in a row")
    intent_streak: int = Field(0, ge=0, description="turns in a row with the same intent")
    last_intent: str | None = None
    task_intent: str | None = Field(None, description="the last intent that asked for something")
    order_value: float | None = Field(None, description="value of the order being discussed")
    ping_streak: int = Field(0, ge=0, description="'hello?'-only messages in a row")
    ping_asked: bool = Field(False, description="one of those asked ('hello?'), not just 'hi'")
    bot_repeats: int = Field(0, ge=0, description="bot re-asks or failures in a row")
    recent_bot: list[str] = Field(
        default_factory=list, description="the bot's last replies, normalised (at most 2)"
    )
    last_words: list[str] = Field(
        default_factory=list, description="content words of the last customer message"
    )
    # The desk.
    queued_ack: bool = Field(False, description="told that messages typed while queued are kept")
    claimed_at: float | None = Field(None, description="epoch seconds a person took it")
    returned_by: int | None = Field(None, description="staff id that returned it to the bot")
    # The offline contact form.
    ticket_id: int | None = None
    offline_step: OfflineStep | None = None
    offline_reasked: OfflineStep | None = None

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> HandoffState:
        return cls.model_validate(data or {})

    def to_stored(self) -> dict[str, Any] | None:
        """Only the keys that differ from the defaults (None when nothing is set)."""
        data = self.model_dump(exclude_defaults=True)
        return data or None
