"""Short follow-ups the NLU cannot place are answered by the answer just given."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.follow_up import ActionFallback, is_follow_up, lets_it_go, previous_answer


@pytest.mark.parametrize(
    "text",
    ["And tomorrow?", "and express?", "what about large then", "do they expire",
     "how about sunday", "is that free?", "and for canada"],
)
def test_follow_ups(text: str) -> None:
    assert is_follow_up(text)


@pytest.mark.parametrize(
    "text",
    ["hmm that's weird", "oh thats a shame. ok never mind then", "blorf",
     "and then my cat knocked the parcel off the table and it broke into pieces",
     "i went to your shop yesterday"],
)
def test_not_follow_ups(text: str) -> None:
    assert not is_follow_up(text)


def tracker(text: str, before: list[dict[str, Any]]) -> Tracker:
    events = [*before, {"event": "action", "name": "action_listen"},
              {"event": "user", "text": text}]  # fmt: skip
    return Tracker.from_dict(
        {
            "sender_id": "t",
            "slots": {},
            "latest_message": {"text": text, "intent": {"name": "nlu_fallback"}},
            "events": events,
            "active_loop": {},
        }
    )


HOURS = [{"event": "user", "text": "when do you open today"},
         {"event": "action", "name": "action_opening_hours"},
         {"event": "bot", "text": "Today we're open 10 AM to 7 PM."}]  # fmt: skip


async def test_a_follow_up_runs_the_last_answer_again_and_says_it_understood() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionFallback().run(dispatcher, tracker("And sunday?", HOURS), {})
    assert events == []
    understood, answer = dispatcher.messages
    assert understood["custom"]["tandem"] == {
        "type": "understood", "question": "follow_up:action_opening_hours"
    }
    assert "Sunday" in answer["text"] and "open" in answer["text"]
    # A second follow-up asks the same answer again (the first one's words say which).
    again = [*HOURS, {"event": "action", "name": "action_listen"},
             {"event": "user", "text": "And sunday?"},
             {"event": "action", "name": "action_fallback"},
             {"event": "bot", "text": answer["text"],
              "metadata": {"tandem_follow_up": "action_opening_hours"}}]  # fmt: skip
    assert previous_answer(tracker("and monday?", again)) == "action_opening_hours"


async def test_anything_else_is_not_understood() -> None:
    for text, before in [("blorf blorf", HOURS), ("And tomorrow?", [])]:
        dispatcher = CollectingDispatcher()
        assert await ActionFallback().run(dispatcher, tracker(text, before), {}) == []
        assert dispatcher.messages[0]["response"] == "utter_default"
    # After an answer a follow-up cannot ask again (an order lookup), nothing is re-run.
    lookup = [{"event": "action", "name": "action_order_status"}]
    assert previous_answer(tracker("and the other one?", lookup)) is None


@pytest.mark.parametrize(
    ("text", "closes"),
    [("oh thats a shame. ok never mind then", True), ("no worries", True),
     ("oh well, too bad", True), ("never mind, where is my order?", False),
     ("the shame of it all is that the zip broke", False), ("blorf", False)],
)
def test_letting_a_topic_go(text: str, closes: bool) -> None:
    assert lets_it_go(text) is closes


async def test_letting_go_gets_anything_else_outside_a_form_only() -> None:
    dispatcher = CollectingDispatcher()
    await ActionFallback().run(dispatcher, tracker("ok never mind then", HOURS), {})
    understood, reply = dispatcher.messages
    assert understood["custom"]["tandem"]["type"] == "understood"
    assert reply["response"] == "utter_anything_else"
    # Mid-form the form asks its question again; "anything else?" would be a second one.
    state = tracker("ok never mind then", HOURS).current_state()
    in_form = Tracker.from_dict({**state, "active_loop": {"name": "order_status_form"}})
    dispatcher = CollectingDispatcher()
    await ActionFallback().run(dispatcher, in_form, {})
    assert [m.get("response") for m in dispatcher.messages] == ["utter_default"]
