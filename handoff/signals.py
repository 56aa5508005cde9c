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


class RetrySignal(_Signal):
    """A form rejected the customer's answer to one question and asks for it again.

    `question` names it ("order_status_form:order_email"); `attempt` counts the rejections
    in this run of the form (1, 2, ...). The gateway's step counts a rejection as the bot
    going round whatever its words (the same slot failing twice is stuck)."""

    type: Literal["retry"] = "retry"
    question: str = Field(min_length=1, max_length=128)
    attempt: int = Field(1, ge=1)


class RefusedSignal(_Signal):
    """A form understood the answer but cannot take it (a closed day, a time already
    taken) and offered the alternatives. The customer is choosing, not going round: the
    gateway's step does not count the form asking again after it."""

    type: Literal["refused"] = "refused"
    question: str = Field(min_length=1, max_length=128)


class UnderstoodSignal(_Signal):
    """The NLU could not place the message (a fallback), but the form took it as the
    answer to its question ("at 3 in afternoon is possible?"), or it was a follow-up of
    the last answer ("and tomorrow?", question "follow_up:<action>"): no misunderstanding,
    so the gateway's step does not count it as a fallback."""

    type: Literal["understood"] = "understood"
    question: str = Field(min_length=1, max_length=128)


AnySignal = HandoffSignal | IdentifiedSignal | RetrySignal | RefusedSignal | UnderstoodSignal
BotSignal = Annotated[AnySignal, Field(discriminator="type")]
_ADAPTER: TypeAdapter[AnySignal] = TypeAdapter(BotSignal)


def to_custom(signal: AnySignal) -> dict[str, Any]:
    """The custom payload an action sends (`dispatcher.utter_message(json_message=...)`)."""
    return {CUSTOM_KEY: signal.model_dump()}


def read_signal(custom: Any) -> AnySignal | None:
    """The signal in a bot message's custom payload; None when there is none or it is malformed."""
    if not isinstance(custom, dict) or not isinstance(custom.get(CUSTOM_KEY), dict):
        return None
    try:
        return _ADAPTER.validate_python(custom[CUSTOM_KEY])
    except ValidationError:
        return None
