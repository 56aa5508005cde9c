"""The ONE per-turn decision step: a customer turn in, a handoff `Decision` out.

    stored turn (TurnFacts) + HandoffState + Mood + customer profile
        -> Mood updated, streaks updated, Signals -> evaluate() -> Decision

It is a pure function. The gateway (`tandem.conversations.flow`), the demo-history
seeder (`tandem.business.history`), the dry-run and the benchmarks (`handoff.replay`)
all call `decide_turn`, so what a benchmark measures is what customers get. Nothing else
in the project updates the streaks, remaps form answers or merges an action's handoff.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from handoff.policy import (
    EPSILON,
    CustomerValue,
    Decision,
    PolicySettings,
    Reason,
    Signals,
    evaluate,
    is_ping,
    phrase_hits,
    ping_asks,
    value_boost,
)
from handoff.state import HandoffState
from sentiment.mood import Mood, carries_feeling

# Intents that carry no request of their own: the task tracking and summaries skip them.
FILLER_INTENTS = frozenset(
    {"greet", "goodbye", "thanks", "affirm", "deny", "inform", "stop", "bot_challenge"}
)
# A form answer keeps the task it answers (an order number given for cancel_order).
ANSWER_INTENTS = frozenset({"inform", "affirm", "deny"})
# How an action's handoff request reads to staff (other reasons: the code, spaced out).
ACTION_REASONS: dict[str, Reason] = {
    "request_human": Reason("asked_for_person", "asked for a person", "request_human"),
    "complaint": Reason("complaint", "customer is making a complaint", "complaint"),
    # A form asked for something the customer says they do not have: only staff can look
    # the order or booking up another way.
    **{
        code: Reason(code, text, code)
        for code, text in {
            "no_order_number": "has no order number: only staff can find the order",
            "no_order_email": "cannot give the order's e-mail: only staff can check it",
            "no_booking_ref": "has no booking reference: only staff can find the booking",
        }.items()
    },
}


@dataclass(frozen=True, slots=True)
class TurnFacts:
    """One stored customer turn, as the step sees it.

    `bot_outcome`: "answered", "fallback" (the bot did not understand), or "none" (the
    bot did not answer: Rasa was down, or a person has the conversation).
    `fallback`: overrides the fallback test on the intent (scenario files may say so).
    `handoff_request`: the reason of a handoff an action asked for (handoff.signals).
    `slot_retries`: a form rejected this answer, the how-manieth time for its question
    (handoff.signals.RetrySignal); 0 when no form rejected anything.
    `slot_refused`: a form understood the answer but could not take it and offered the
    alternatives (handoff.signals.RefusedSignal): choosing, not going round.
    `order_value`: the value of an order this message names (looked up by the caller).
    """

    text: str
    intent: str | None = None
    confidence: float | None = None
    entity_spans: Sequence[tuple[int, int]] = ()
    sentiment: float | None = None
    fallback: bool | None = None
    handoff_request: str | None = None
    slot_retries: int = 0
    slot_refused: bool = False
    order_value: float | None = None
    basket_value: float | None = None
    bot_answered: bool = True
    bot_texts: Sequence[str] = ()  # what the bot replied (to see it going round in circles)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    decision: Decision
    state: HandoffState
    mood: Mood
    signals: Signals
    felt: float | None = field(default=None)  # the score the Mood counted (None: no feeling)


# Shared content words (Jaccard) that make a message the previous one said again.
REPHRASE_OVERLAP = 0.3
_STOPWORDS = frozenset(
    (
        "about", "again", "also", "anyone", "anything", "been", "could", "does", "doing", "dont",
        "from", "have", "hello", "just", "know", "like", "looking", "need", "please", "really",
        "said", "still", "than", "thanks", "that", "their", "them", "then", "there", "these",
        "they", "this", "want", "what", "when", "where", "which", "will", "with", "would", "your",
        "yours", "youre",
    )
)


def content_words(text: str) -> set[str]:
    """The words that say what a message is about (4+ letters, no filler)."""
    return {w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOPWORDS}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _last_question(text: str) -> str:
    """The bot's last question, when it asks one of at least four words ("Anything else?"
    is no form question)."""
    questions = [q.strip() for q in re.findall(r"[^.?!]*\?", text)]
    question = questions[-1] if questions else ""
    return question if len(question.split()) >= 4 else ""


# Share of what a bot reply asks for that its earlier replies already asked for: a re-ask.
REASK_OVERLAP = 0.5
REASK_MIN_WORDS = 2
# A reply without a question mark that still asks for something.
_REQUEST = re.compile(
    r"\b(please|i need|i'll need|i will need|give me|tell me|send me|type|enter|let me know)\b",
    re.IGNORECASE,
)


def _asked_words(text: str) -> set[str]:
    """What a bot reply asks for: its content words, plurals folded ("numbers", "digits")."""
    return {w[:-1] if w.endswith("s") else w for w in content_words(text)}


def asks_again(bot_text: str, previous: str, similarity: int) -> bool:
    """The bot asks for what its previous reply asked for: the same question in other
    words ("Could you give me the 5-digit order number?" after "Order numbers have 5
    digits"), or a request without a question mark. A form that starts again after a
    mismatch and moves on to its next question is not asking again."""
    question, before = _last_question(bot_text), _last_question(previous)
    if question and before and fuzz.token_set_ratio(question, before) >= similarity:
        return True
    if not question and not _REQUEST.search(bot_text):
        return False  # an answer ("The Linen Shirt in M: 3 left"), not a request
    asked = _asked_words(question or bot_text)
    shared = len(asked & _asked_words(before or previous))
    # Two words at least: "order" alone is in the e-mail question and the number's.
    return shared >= REASK_MIN_WORDS and shared / len(asked) >= REASK_OVERLAP


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s'$.,?-]", " ", text.lower()).split())[:300]


def felt_score(text: str, spans: Sequence[tuple[int, int]], score: float | None) -> float | None:
    """The score the Mood and the negative streak count: none for a bare form answer."""
    return score if score is not None and carries_feeling(text, spans) else None


def negative_streak_after(streak: int, felt: float | None, policy: PolicySettings) -> int:
    """The negative-turn counter after one more customer message (unscored turns keep it)."""
    if felt is None:
        return streak
    return streak + 1 if felt <= policy.triggers.negative_streak.score_cutoff + EPSILON else 0


def is_fallback(turn: TurnFacts, policy: PolicySettings) -> bool:
    if turn.fallback is not None:
        return turn.fallback
    return turn.intent in policy.triggers.fallbacks.intents


def fold_mood(mood: Mood, turn: TurnFacts, policy: PolicySettings) -> Mood:
    """A copy of `mood` with this customer message (and the bot's answer, if any) in it."""
    mood = Mood.from_dict(mood.to_dict(), mood.settings)
    # The entity spans tell the Mood which words are values the customer gives (a name,
    # a date): giving or correcting one is no correction of the bot.
    felt = felt_score(turn.text, turn.entity_spans, turn.sentiment)
    mood.add_customer_message(turn.text, felt, turn.entity_spans)
    if turn.bot_answered:
        # With the bot's words the Mood also sees a question asked again (a form re-ask).
        said = " ".join(turn.bot_texts) or None
        mood.add_bot_event("fallback" if is_fallback(turn, policy) else "answer", text=said)
    return mood


def reads_pleased(text: str, felt: float | None, mood: Mood, policy: PolicySettings) -> bool:
    """A customer chatting happily, not stuck, when the bot misses what they say: a clearly
    positive score, or a message that opens with thanks or praise and goes on ("nice, ok
    I'll order both later"). Never with a question, sarcasm or a "no" in it (the Mood,
    already holding this message, says), and never bare praise ("fantastic.") after a
    failure, which is as likely ironic."""
    rule = policy.triggers.fallbacks
    if "?" in text or mood.pushes_back:
        return False
    if felt is not None and mood.scores[-1] >= rule.pleased_score:
        return True
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    openers = [o.split() for o in rule.pleased_openers]
    opener = next((o for o in openers if words[: len(o)] == o), None)
    if opener is None:
        return False
    praise = {w for o in openers for w in o} | _INTENSIFIERS
    said = [w for w in words[len(opener) :] if w not in praise]
    return len(said) >= 2


# Words that only strengthen praise ("fantastic. just fantastic."): no content of their own.
_INTENSIFIERS = frozenset({"just", "so", "really", "very", "oh", "ok", "okay", "soo", "sooo"})


def decide_turn(
    turn: TurnFacts,
    state: HandoffState,
    mood: Mood,
    customer: CustomerValue | None,
    policy: PolicySettings,
    *,
    conversation_id: str = "",
    already_escalated: bool = False,
) -> TurnOutcome:
    """Update the Mood and the streaks with one customer turn, then ask the policy."""
    mood = fold_mood(mood, turn, policy)
    felt = felt_score(turn.text, turn.entity_spans, turn.sentiment)
    intent = turn.intent
    misunderstood = is_fallback(turn, policy)
    # What counts towards "stuck" (the pleased test only runs on a misunderstood message).
    fallback = misunderstood and not reads_pleased(turn.text, felt, mood, policy)
    state = state.model_copy()
    state.negative_streak = negative_streak_after(state.negative_streak, felt, policy)
    state.fallback_streak = state.fallback_streak + 1 if fallback else 0
    stuck = policy.triggers.stuck
    pinged = is_ping(turn.text, stuck)
    state.ping_streak = state.ping_streak + 1 if pinged else 0
    state.ping_asked = pinged and (ping_asks(turn.text) or state.ping_asked)
    bot_text = _normalise(" ".join(turn.bot_texts))
    # Which of the bot's last two replies this one says again (one comparison each).
    said_again = [
        bool(bot_text) and fuzz.ratio(bot_text, previous) >= stuck.similarity
        for previous in state.recent_bot
    ]
    same_reply = any(said_again)
    if turn.bot_answered and bot_text:
        failed = bool(phrase_hits(bot_text, stuck.failure_phrases))
        answered_form = intent in ANSWER_INTENTS or fallback
        # The customer answered and the bot asked for the same thing again (in other words).
        # Compared with the previous reply only: a form that starts again after a mismatch
        # repeats what it said two replies ago, and that is progress, not a loop.
        previous = state.recent_bot[0] if state.recent_bot else ""
        repeated = bool(said_again) and said_again[0]
        reasked = answered_form and bool(previous) and asks_again(
            bot_text, previous, stuck.similarity
        )
        # A form that says it rejected the answer is going round whatever its words.
        rejected = turn.slot_retries > 0
        going_round = (failed or repeated or reasked or rejected) and not turn.slot_refused
        answering = answered_form or intent == state.last_intent or rejected
        state.bot_repeats = state.bot_repeats + 1 if answering and going_round else 0
        state.recent_bot = [bot_text, *state.recent_bot][:2]
    words = content_words(turn.text)
    rephrased = _overlap(words, set(state.last_words)) >= REPHRASE_OVERLAP
    ignored = policy.triggers.repeated_intent.ignore
    if not intent or intent in ignored:
        state.intent_streak = 0
    elif intent == state.last_intent and (same_reply or rephrased or not bot_text):
        # The same question again (rephrased, or answered the same way): not helping. A new
        # question of the same kind (another product) starts a new run.
        state.intent_streak += 1
    else:
        state.intent_streak = 1
    state.last_intent = intent
    state.last_words = sorted(words)[:20]
    if intent and intent not in FILLER_INTENTS and not misunderstood:
        state.task_intent = intent
    if turn.order_value is not None:
        state.order_value = turn.order_value
    # An order number typed into the cancel form arrives as `inform`: judge it as the
    # cancellation it belongs to.
    policy_intent = intent
    if intent in ANSWER_INTENTS and state.task_intent == "cancel_order":
        policy_intent = "cancel_order"
    # Sarcasm in reply to the bot (a sarcastic opener gives the bot its chance).
    sarcasm = mood.sarcasm_now if mood.customer_turns >= policy.triggers.sarcasm.from_turn else None
    signals = Signals(
        conversation_id=conversation_id,
        intent=policy_intent,
        intent_confidence=turn.confidence,
        sarcasm=sarcasm,
        text=turn.text,
        frustration=mood.frustration,
        frustration_explanation=mood.explain(),
        consecutive_negative_turns=state.negative_streak,
        consecutive_fallbacks=state.fallback_streak,
        same_intent_turns=state.intent_streak,
        sentiment_score=felt,
        customer=customer,
        order_value=state.order_value if policy_intent == "cancel_order" else None,
        already_escalated=already_escalated,
        basket_value=turn.basket_value,
        pings=state.ping_streak,
        ping_asked=state.ping_asked,
        bot_repeats=state.bot_repeats,
    )
    decision = evaluate(signals, policy)
    if turn.handoff_request is not None and not decision.escalate and not already_escalated:
        decision = _action_handoff(decision, turn.handoff_request, customer, policy)
    return TurnOutcome(decision, state, mood, signals, felt)


def _action_handoff(
    decision: Decision, trigger: str, customer: CustomerValue | None, policy: PolicySettings
) -> Decision:
    """An action asked for a person: that always escalates, with the policy's reasons too."""
    reason = ACTION_REASONS.get(trigger, Reason(trigger, trigger.replace("_", " ")))
    codes = {r.code for r in decision.reasons}
    reasons = decision.reasons if reason.code in codes else [reason, *decision.reasons]
    priority = max(decision.priority, policy.triggers.human_request.priority)
    triggers = [*decision.triggers, trigger]
    notes = decision.notes
    if "high_value" not in decision.triggers:
        # high_value.mode: priority leaves the policy's decision at "stay", but a handoff
        # an action started still serves a valuable customer sooner.
        boost, boost_reasons = value_boost(customer, policy)
        if boost_reasons:
            priority = max(priority, boost) + min(policy.combined_bump, policy.max_combined_bump)
            reasons = [*reasons, *boost_reasons]
            triggers.append("high_value")
            notes = [n for n in notes if n.code != "value_priority_only"]
    return Decision("escalate", priority, reasons, notes, triggers)


def fold_late_score(
    state: HandoffState,
    mood: Mood,
    *,
    text: str,
    entity_spans: Sequence[tuple[int, int]],
    score: float,
    later_turns: int,
    policy: PolicySettings,
) -> tuple[HandoffState, Mood] | None:
    """A score that came after its turn (the model was loading): the corrected state.

    The turn counted as neutral; the Mood's average is linear in the scores, so the
    difference is added with the weight it has now, `later_turns` customer messages on.
    None when there is nothing to correct.
    """
    if felt_score(text, entity_spans, score) is None or mood.customer_turns == 0:
        return None
    if later_turns >= mood.customer_turns:
        return None  # the Mood was reset since (returned to the bot)
    mood = Mood.from_dict(mood.to_dict(), mood.settings)
    alpha = mood.settings.ema_alpha
    first = mood.customer_turns - 1 - later_turns == 0
    if mood.ema is not None:
        mood.ema += (1 - alpha) ** later_turns * (1.0 if first else alpha) * score
    if later_turns < len(mood.scores):
        mood.scores[len(mood.scores) - 1 - later_turns] = score
    mood.peak = max(mood.peak, mood.frustration)
    state = state.model_copy()
    if later_turns == 0:
        state.negative_streak = negative_streak_after(state.negative_streak, score, policy)
    return state, mood
