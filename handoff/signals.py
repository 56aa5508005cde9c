"""The typed contract between the Rasa actions and the gateway.

An action attaches a signal to a bot message as Rasa's custom payload
`{"tandem": {...}}` (see `to_custom`); the gateway reads it back with `read_signal`.
Both sides import these models, so a field can never be renamed on one side only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

CUSTOM_KEY = "tandem"
# A quick-reply button with this payload offers a person (the gateway sees the offer).
PERSON_PAYLOAD = "/request_human"


class _Signal(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HandoffSignal(_Signal):
    """An action asks for a person (request_human, complaint, a case only staff can act on).

    `text` is what the bot says before the gateway decides how the person is reached:
    the gateway adds the availability words (queued, or offline) itself.
    """

    type: Literal["handoff"] = "handoff"
    reason: str = Field("request_human", min_length=1, max_length=64)
    text: str = ""


class IdentifiedSignal(_Signal):
    """An action verified who the customer is (order number + matching e-mail)."""

    type: Literal["identified"] = "identified"
    customer_id: int
    via: str = Field("chat", max_length=64)


BotSignal = Annotated[HandoffSignal | IdentifiedSignal, Field(discriminator="type")]
_ADAPTER: TypeAdapter[HandoffSignal | IdentifiedSignal] = TypeAdapter(BotSignal)


def to_custom(signal: HandoffSignal | IdentifiedSignal) -> dict[str, Any]:
    """The custom payload an action sends (`dispatcher.utter_message(json_message=...)`)."""
    return {CUSTOM_KEY: signal.model_dump()}


def read_signal(custom: Any) -> HandoffSignal | IdentifiedSignal | None:
    """The signal in a bot message's custom payload; None when there is none or it is malformed."""
    if not isinstance(custom, dict) or not isinstance(custom.get(CUSTOM_KEY), dict):
        return None
    try:
        return _ADAPTER.validate_python(custom[CUSTOM_KEY])
    except ValidationError:
        return None
