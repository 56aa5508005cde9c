"""The handoff policy: every trigger alone and combined, boundaries, notes, settings errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handoff.policy import (
    CustomerValue,
    PolicyError,
    PolicySettings,
    Signals,
    evaluate,
    load_policy,
    money,
    stated_amount,
)
from tandem.config import PROJECT_ROOT

SHIPPED_POLICY = PROJECT_ROOT / "handoff.yml"

# The policy's logic, tested at a fixed frustration threshold (the shipped one is tuned).
DEFAULTS = PolicySettings.from_mapping({"triggers": {"frustration": {"threshold": 0.70}}})
VIP = CustomerValue(verified=True, tier="vip", lifetime_value=900, open_order_value=0)


def signals(**fields: Any) -> Signals:
    return Signals(conversation_id="c1", **fields)


def settings(**overrides: Any) -> PolicySettings:
    return PolicySettings.from_mapping(overrides)


def texts(**fields: Any) -> list[str]:
    return [reason.text for reason in evaluate(signals(**fields), DEFAULTS).reasons]


# --------------------------------------------------------------------------- calm


def test_a_calm_faq_message_stays_with_the_bot() -> None:
    decision = evaluate(
        signals(intent="ask_hours", intent_confidence=0.97, text="when do you open on sunday?",
                frustration=0.05, sentiment_score=0.1),
        DEFAULTS,
    )  # fmt: skip
    assert (decision.action, decision.priority, decision.reasons, decision.notes) == (
        "stay", 0, [], [],
    )  # fmt: skip
    assert not decision.escalate


# --------------------------------------------------------------------------- each trigger


def test_frustration_at_and_below_the_threshold() -> None:
    at = evaluate(signals(frustration=0.70), DEFAULTS)
    assert (at.action, at.priority, at.triggers) == ("escalate", 3, ["frustration"])
    assert at.reasons[0].text == "frustration 0.70 ≥ 0.70"
    assert evaluate(signals(frustration=0.1 + 0.6), DEFAULTS).escalate  # 0.69999... counts
    assert not evaluate(signals(frustration=0.69), DEFAULTS).escalate
    assert not evaluate(signals(frustration=None), DEFAULTS).escalate


def test_frustration_reason_carries_mood_explanation() -> None:
    explanation = "frustration 0.82: negative trend over 3 turns, caps"
    [reason] = evaluate(signals(frustration=0.82, frustration_explanation=explanation),
                        DEFAULTS).reasons  # fmt: skip
    assert reason.text == "frustration 0.82 ≥ 0.70 (negative trend over 3 turns, caps)"
    assert (reason.code, reason.value, reason.threshold) == ("frustration", 0.82, 0.70)
    calm = evaluate(signals(frustration=0.9, frustration_explanation="frustration 0.90: calm"),
                    DEFAULTS)  # fmt: skip
    assert calm.reasons[0].text == "frustration 0.90 ≥ 0.70"


def test_negative_streak_boundary() -> None:
    assert texts(consecutive_negative_turns=3) == [
        "negative sentiment 3 turns in a row (score ≤ -0.40)"
    ]
    assert texts(consecutive_negative_turns=2) == []


def test_explicit_request_for_a_person() -> None:
    decision = evaluate(signals(intent="request_human", intent_confidence=0.93), DEFAULTS)
    assert (decision.action, decision.priority) == ("escalate", 4)
    assert decision.reasons[0].text == "asked for a person"
    # NLU filed it as a fallback, but the words are unmistakable.
    phrase = evaluate(signals(intent="nlu_fallback", text="Can I speak to a HUMAN being"), DEFAULTS)
    assert phrase.triggers == ["human_request"]
    assert phrase.reasons[0].value == "human being"


def test_low_confidence_intents_are_not_trusted() -> None:
    decision = evaluate(signals(intent="request_human", intent_confidence=0.31), DEFAULTS)
    assert not decision.escalate
    assert [n.text for n in decision.notes] == [
        "intent request_human at confidence 0.31 < 0.50: not trusted"
    ]
    assert evaluate(signals(intent="request_human", intent_confidence=0.5), DEFAULTS).escalate


def test_consecutive_fallbacks() -> None:
    assert texts(consecutive_fallbacks=2) == ["2 bot fallbacks in a row"]
    assert texts(consecutive_fallbacks=1) == []
    custom = settings(triggers={"fallbacks": {"count": 1}})
    assert evaluate(signals(consecutive_fallbacks=1), custom).reasons[0].text == (
        "1 bot fallback in a row"
    )


def test_the_same_question_again_and_again() -> None:
    assert texts(intent="ask_returns", intent_confidence=0.9, same_intent_turns=2) == []
    assert texts(intent="ask_returns", intent_confidence=0.9, same_intent_turns=3) == [
        "asked the same question (ask_returns) 3 times in a row"
    ]
    off = settings(triggers={"repeated_intent": {"enabled": False}})
    assert not evaluate(signals(intent="ask_returns", same_intent_turns=9), off).escalate


def test_complaint() -> None:
    decision = evaluate(signals(intent="complaint", intent_confidence=0.88), DEFAULTS)
    assert (decision.priority, decision.reasons[0].code) == (3, "complaint")


def test_large_cancellation_boundary_and_unknown_value() -> None:
    assert texts(intent="cancel_order", order_value=300) == ["cancelling an order of $300 ≥ $300"]
    assert texts(intent="cancel_order", order_value=299.99) == []
    assert texts(intent="cancel_order", order_value=None) == []
    assert texts(intent="order_status", order_value=900) == []  # only when cancelling


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("I'm calling my LAWYER", "'lawyer'"),
        ("we will sue you", "'sue you', 'will sue'"),
        ("ok Ill sue then", "'i'll sue'"),
        ("I'll file a chargeback with my bank", "'chargeback'"),
        ("reporting you to the BBB", "'BBB'"),
        ("see you in small   claims court", "'small claims'"),
    ],
)
def test_legal_words(text: str, hit: str) -> None:
    decision = evaluate(signals(text=text), DEFAULTS)
    assert (decision.priority, decision.triggers) == (5, ["legal"])
    assert decision.reasons[0].text == f"legal language: {hit}"


@pytest.mark.parametrize(
    "text", ["there is an issue with my order", "I pursue", "sued-ish? no: lawyered"]
)
def test_legal_words_need_whole_words(text: str) -> None:
    assert evaluate(signals(text=text), settings(triggers={"legal": {"words": ["sue", "lawyer"]}})
                    ).escalate is False  # fmt: skip


@pytest.mark.parametrize(
    "text", ["my name is Sue Parker", "it's booked under sue", "Sue", "ask for Sue at the till"]
)
def test_sue_as_a_name_is_not_legal_language(text: str) -> None:
    assert "legal" not in evaluate(signals(text=text), DEFAULTS).triggers


ESCALATE_VALUE = settings(triggers={"high_value": {"mode": "escalate"}})


def test_a_calm_high_value_customer_stays_with_the_bot_by_default() -> None:
    marcus = CustomerValue(verified=True, tier="regular", lifetime_value=2022, open_order_value=0)
    decision = evaluate(
        signals(intent="order_status", intent_confidence=0.95, frustration=0.1, customer=marcus),
        DEFAULTS,
    )
    assert DEFAULTS.triggers.high_value.mode == "priority"
    assert (decision.action, decision.reasons) == ("stay", [])
    assert [n.text for n in decision.notes] == [
        "high-value customer: lifetime value $2,022: raises the priority of a handoff, "
        "does not start one"
    ]


def test_high_value_raises_the_priority_of_another_trigger() -> None:
    marcus = CustomerValue(verified=True, tier="regular", lifetime_value=2022, open_order_value=0)
    plain = evaluate(signals(consecutive_fallbacks=2), DEFAULTS)
    valued = evaluate(signals(consecutive_fallbacks=2, customer=marcus), DEFAULTS)
    assert (plain.priority, valued.priority) == (2, 3 + 1)
    assert valued.triggers == ["fallbacks", "high_value"]
    assert valued.summary == (
        "2 bot fallbacks in a row; high-value customer: lifetime value $2,022"
    )
    assert [r.text for r in evaluate(signals(frustration=0.9, customer=VIP), DEFAULTS).reasons][
        1:
    ] == ["high-value customer: tier VIP"]


def test_verified_high_value_customer_in_escalate_mode() -> None:
    def value_texts(customer: CustomerValue) -> list[str]:
        return [r.text for r in evaluate(signals(customer=customer), ESCALATE_VALUE).reasons]

    assert value_texts(VIP) == ["customer tier VIP"]
    rich = CustomerValue(verified=True, tier="regular", lifetime_value=2000, open_order_value=640)
    assert value_texts(rich) == ["lifetime value $2,000 ≥ $2,000", "open order $640 ≥ $500"]
    assert evaluate(signals(customer=rich), ESCALATE_VALUE).escalate
    below = CustomerValue(verified=True, tier="gold", lifetime_value=1999.5, open_order_value=499)
    assert value_texts(below) == []


def test_high_value_mode_is_validated() -> None:
    with pytest.raises(PolicyError, match=r"triggers\.high_value\.mode"):
        settings(triggers={"high_value": {"mode": "always"}})


def test_unverified_value_claims_are_ignored_and_noted() -> None:
    claimed = CustomerValue(verified=False, tier="VIP", lifetime_value=5000, open_order_value=640)
    decision = evaluate(signals(customer=claimed, text="I'm a VIP, put me through"), DEFAULTS)
    assert not decision.escalate
    assert [n.text for n in decision.notes] == [
        "customer claims VIP but is not verified: ignored",
        "customer claims lifetime value $5,000 ≥ $2,000 but is not verified: ignored",
        "customer claims open order $640 ≥ $500 but is not verified: ignored",
    ]


def test_purchase_intent_only_with_a_big_basket() -> None:
    assert texts(intent="product_info", text="12 blazers for my team, about $1,400 total") == [
        "purchase interest (product_info), basket $1,400 ≥ $500"
    ]
    assert texts(intent="book_appointment", basket_value=500) == [
        "purchase interest (book_appointment), basket $500 ≥ $500"
    ]
    # A price question from a valuable customer is not a sales lead.
    worth = CustomerValue(verified=True, lifetime_value=2800)
    assert not evaluate(signals(intent="product_info", customer=worth), DEFAULTS).escalate
    assert texts(intent="product_info", text="is the $45 linen shirt in M?") == []
    assert texts(intent="ask_shipping", text="shipping on a $900 order?") == []
    unverified = CustomerValue(verified=False, lifetime_value=800)
    assert texts(intent="product_info", customer=unverified) == []


def test_stated_amount() -> None:
    assert stated_amount("about $1,400.50 or 900 dollars, USD 2000") == 2000
    assert stated_amount("order 10482, size 8") is None
    assert money(640) == "$640"
    assert money(19.9, "€") == "€19.90"


# --------------------------------------------------------------------------- combined


def test_combined_triggers_bump_the_priority() -> None:
    decision = evaluate(
        signals(frustration=0.85, consecutive_fallbacks=2, intent="request_human", customer=VIP),
        DEFAULTS,
    )
    assert decision.triggers == ["frustration", "human_request", "fallbacks", "high_value"]
    assert decision.priority == 4 + 2  # the highest (4) plus the capped bump (2)
    two = evaluate(signals(frustration=0.85, consecutive_fallbacks=2), DEFAULTS)
    assert two.priority == 3 + 1


def test_several_value_reasons_are_one_trigger() -> None:
    whale = CustomerValue(verified=True, tier="vip", lifetime_value=9000, open_order_value=900)
    decision = evaluate(signals(customer=whale), ESCALATE_VALUE)
    assert (decision.priority, len(decision.reasons), decision.triggers) == (3, 3, ["high_value"])
    boosted = evaluate(signals(customer=whale, intent="complaint"), DEFAULTS)
    assert (boosted.priority, boosted.triggers) == (3 + 1, ["complaint", "high_value"])


def test_legal_and_cancellation_summary() -> None:
    decision = evaluate(
        signals(intent="cancel_order", order_value=640, text="cancel it or my attorney calls"),
        DEFAULTS,
    )
    assert decision.priority == 6
    assert decision.summary == "cancelling an order of $640 ≥ $300; legal language: 'attorney'"


def test_already_escalated_keeps_reasons_but_stays() -> None:
    decision = evaluate(signals(intent="request_human", already_escalated=True), DEFAULTS)
    assert (decision.action, decision.priority) == ("stay", 4)
    assert decision.reasons[0].text == "asked for a person"
    assert [n.text for n in decision.notes] == ["already escalated: no new handoff"]


def test_disabled_triggers_and_policy() -> None:
    quiet = settings(triggers={"frustration": {"enabled": False}, "legal": {"enabled": False}})
    assert not evaluate(signals(frustration=0.99, text="my lawyer"), quiet).escalate
    off = settings(enabled=False)
    decision = evaluate(signals(intent="request_human"), off)
    assert (decision.action, [n.code for n in decision.notes]) == ("stay", ["disabled"])


def test_decision_to_dict_is_json_ready() -> None:
    decision = evaluate(signals(frustration=0.8, customer=VIP), DEFAULTS)
    stored = json.loads(json.dumps(decision.to_dict()))
    assert stored == {
        "action": "escalate",
        "priority": 4,
        "triggers": ["frustration", "high_value"],
        "reasons": [
            {"code": "frustration", "text": "frustration 0.80 ≥ 0.70", "value": 0.8,
             "threshold": 0.7},
            {"code": "vip_tier", "text": "high-value customer: tier VIP", "value": "vip",
             "threshold": None},
        ],
        "notes": [],
            "note_codes": [],
    }  # fmt: skip


# --------------------------------------------------------------------------- settings


def test_the_shipped_handoff_yml_matches_the_defaults() -> None:
    assert load_policy(SHIPPED_POLICY) == PolicySettings()
    assert PolicySettings().triggers.frustration.threshold == 0.60
    assert load_policy(None) == PolicySettings()


def test_missing_keys_keep_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text("triggers:\n  frustration:\n    threshold: 0.8\n")
    loaded = load_policy(path)
    assert loaded.triggers.frustration.threshold == 0.8
    assert loaded.triggers.frustration.priority == 3
    assert loaded.triggers.legal == DEFAULTS.triggers.legal
    path.write_text("")
    assert load_policy(path) == PolicySettings()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("triggers:\n  frustration:\n    threshold: 1.5\n",
         "triggers.frustration.threshold: Input should be less than or equal to 1 (got 1.5)"),
        ("triggers:\n  fallbacks:\n    count: many\n", "triggers.fallbacks.count: Input should be"),
        ("triggers:\n  frustration:\n    threshhold: 0.5\n",
         "triggers.frustration.threshhold: Extra inputs are not permitted"),
        ("triggers:\n  legal:\n    words: [lawyer, '  ']\n", "triggers.legal.words: Value error"),
        ("tirggers: {}\n", "tirggers: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_settings_name_the_file_and_field(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text(yaml_text)
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    message = str(error.value)
    assert message.startswith(f"{path}: invalid handoff policy")
    assert expected in message


def test_unreadable_policy_files(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text("triggers: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(path)
    path.write_text("- a list\n")
    with pytest.raises(PolicyError, match="expected a mapping of settings, got a list"):
        load_policy(path)
    with pytest.raises(PolicyError, match="no such handoff policy file"):
        load_policy(tmp_path / "missing.yml")


# --------------------------------------------------------------------------- issue 11 needs


def test_needs_that_always_go_to_a_person() -> None:
    for text, code in [
        ("I use a screen reader and can't reach the pay button", "accessibility"),
        ("my daughter got a rash from the wool scarf", "safety"),
        ("do you do wholesale for my boutique?", "wholesale"),
        ("you charged me twice for one order", "payment_dispute"),
    ]:
        decision = evaluate(signals(intent="nlu_fallback", text=text), DEFAULTS)
        assert decision.escalate and decision.reasons[0].code == code, text
    by_intent = evaluate(signals(intent="change_order", intent_confidence=0.9), DEFAULTS)
    assert by_intent.reasons[0].code == "order_change"


def test_asking_whether_the_bot_is_a_person_never_starts_a_handoff() -> None:
    challenge = signals(intent="bot_challenge", intent_confidence=0.95, text="r u a real person")
    assert not evaluate(challenge, DEFAULTS).escalate
    # The same words with a plain request still reach a person.
    plain = signals(intent="nlu_fallback", text="get me a real person")
    assert evaluate(plain, DEFAULTS).escalate


def test_value_with_a_need() -> None:
    vip = CustomerValue(verified=True, tier="vip", lifetime_value=5000)
    routine = signals(intent="order_status", intent_confidence=0.9, customer=vip,
                      sentiment_score=0.1)  # fmt: skip
    assert not evaluate(routine, DEFAULTS).escalate
    unhappy = signals(intent="order_status", intent_confidence=0.9, customer=vip,
                      sentiment_score=-0.6)  # fmt: skip
    assert evaluate(unhappy, DEFAULTS).triggers == ["high_value"]
    problem = evaluate(signals(intent="start_return", intent_confidence=0.9, customer=vip),
                       DEFAULTS)  # fmt: skip
    assert problem.escalate and "with start return" in problem.summary
    browsing = evaluate(signals(intent="product_info", intent_confidence=0.9, customer=vip),
                        DEFAULTS)  # fmt: skip
    assert not browsing.escalate


def test_shouting_churn_and_pings() -> None:
    shout = evaluate(signals(text="WHERE IS MY REFUND??? THREE WEEKS!!!"), DEFAULTS)
    assert shout.triggers == ["shouting"]
    habit = evaluate(signals(text="DO YOU HAVE THIS IN BLUE", sentiment_score=0.1), DEFAULTS)
    assert not habit.escalate
    leaving = evaluate(signals(text="forget it, I'll take my business elsewhere"), DEFAULTS)
    assert leaving.triggers == ["churn"]
    assert evaluate(signals(pings=2, ping_asked=True), DEFAULTS).reasons[0].code == "waiting"
    assert not evaluate(signals(pings=1, ping_asked=True), DEFAULTS).escalate
    assert not evaluate(signals(pings=2), DEFAULTS).escalate  # "hi", "hello": greeting again
    assert evaluate(signals(pings=3), DEFAULTS).reasons[0].code == "waiting"
    assert evaluate(signals(bot_repeats=2), DEFAULTS).reasons[0].code == "stuck"
    assert not evaluate(signals(bot_repeats=1), DEFAULTS).escalate


def test_every_threshold_is_editable_on_the_owner_page() -> None:
    from handoff.editing import EDITABLE_BY_PATH, apply_changes

    for path in ("triggers.stuck.bot_repeats", "triggers.stuck.pings",
                 "triggers.shouting.caps_share", "triggers.high_value.negative_cutoff",
                 "triggers.purchase_intent.value", "triggers.frustration.threshold",
                 "triggers.always_human.enabled", "triggers.churn.priority"):  # fmt: skip
        assert path in EDITABLE_BY_PATH, path
    changed = apply_changes(DEFAULTS, {"triggers.stuck.pings": 3})
    assert changed.triggers.stuck.pings == 3


@pytest.mark.parametrize(
    "text",
    ["That's the same message. I'd like to know where my money is.",
     "still not answering my question", "you didn't answer my question"],
)  # fmt: skip
def test_a_customer_saying_the_bot_does_not_answer_is_stuck(text: str) -> None:
    decision = evaluate(signals(text=text), DEFAULTS)
    assert decision.escalate and decision.reasons[0].code == "unanswered"
    assert not evaluate(signals(text="is the answer the same for sale items?"), DEFAULTS).escalate


def test_phrases_match_with_or_without_apostrophes() -> None:
    from handoff.policy import phrase_hits

    assert phrase_hits("that doesnt answer it", ["that doesn't answer"]) == ["that doesn't answer"]
    assert phrase_hits("you’re not answering", ["youre not answering"]) == ["youre not answering"]
    assert phrase_hits("ill sue", ["I'll sue"]) == ["I'll sue"]
    assert phrase_hits("this is an issue", ["sue"]) == []  # still whole words only
    # "*" stands for up to six words
    assert phrase_hits("id rather deal with an actual human", ["rather * a human"]) == []
    assert phrase_hits("id rather deal with a human", ["rather * a human"]) == ["rather * a human"]
    too_far = "rather, one two three four five six seven someone"
    assert phrase_hits(too_far, ["rather * someone"]) == []


def test_asking_to_talk_with_somebody_is_a_request_for_a_person() -> None:
    settings = load_policy(PROJECT_ROOT / "handoff.yml")
    for said in (
        "could i talk with somebody who works there",
        "honestly I'd much prefer to go through this with someone in person",
        "i want someone to look at the photos",
    ):
        asks = evaluate(Signals("c", intent="give_feedback", text=said), settings)
        assert asks.escalate and asks.reasons[0].code == "asked_for_person", said
    hours = "can someone tell me your hours"
    calm = evaluate(Signals("c", intent="ask_hours", text=hours), settings)
    assert not calm.escalate
