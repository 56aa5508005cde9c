"""Replay a scripted or stored conversation through the sentiment Mood and the policy.

Shared by the dry-run CLI (`python -m handoff.dryrun`), the scenario tests and
`bench/handoff.py`. A scenario file is YAML:

    scenarios:
      - name: vip_verified_asks_hours
        category: vip                # free text, used to group results
        escalate_at: 1               # 1-based customer turn that should escalate, or null
        customer: {verified: true, tier: vip, lifetime_value: 3200, open_order_value: 0}
        turns:
          - text: "hi, when do you open on sunday?"
            intent: ask_hours
            confidence: 0.96         # optional NLU confidence
            sentiment: 0.1           # optional score in [-1, 1]; else the Analyzer's
            fallback: false          # optional; default: intent is a fallback intent
            order_value: 640         # optional: the order being cancelled
            basket_value: 1200       # optional: a basket the customer stated

A dry-run file holds one scenario at the top level (the same keys, without `scenarios`).

Per customer turn, as the gateway does it: score the text, feed Mood the message and the
bot's reply (a fallback when NLU gave a fallback intent), update the streak counters,
then `evaluate`. After the first escalation later turns carry `already_escalated`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handoff.policy import (
    CustomerValue,
    Decision,
    PolicySettings,
    Signals,
    evaluate,
    update_fallback_streak,
    update_intent_streak,
    update_negative_streak,
)


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message names the file and field."""


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    intent: str | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    sentiment: float | None = Field(None, ge=-1, le=1)
    fallback: bool | None = None
    order_value: float | None = Field(None, ge=0)
    basket_value: float | None = Field(None, ge=0)


class CustomerProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verified: bool = False
    tier: str | None = None
    lifetime_value: float | None = None
    open_order_value: float | None = None

    def value(self) -> CustomerValue:
        return CustomerValue(self.verified, self.tier, self.lifetime_value, self.open_order_value)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "conversation"
    category: str = ""
    description: str = ""
    escalate_at: int | None = Field(None, ge=1, description="1-based turn, null = never")
    customer: CustomerProfile | None = None
    turns: list[Turn] = Field(min_length=1)


class _ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios: list[Scenario] = Field(min_length=1)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from None


def _invalid(path: Path, error: ValidationError) -> ScenarioError:
    problems = [
        f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in error.errors()
    ]
    return ScenarioError("\n".join([f"{path}: invalid scenario", *problems]))


def load_scenarios(path: str | Path) -> list[Scenario]:
    """A file with `scenarios: [...]`, or a single scenario at the top level."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        if isinstance(data, dict) and "scenarios" in data:
            return _ScenarioFile.model_validate(data).scenarios
        return [Scenario.model_validate(data)]
    except ValidationError as error:
        raise _invalid(path, error) from None


# --------------------------------------------------------------------------- sentiment


class MoodLike(Protocol):
    """What replay needs from sentiment.Mood."""

    def add_customer_message(self, text: str, scores: Any = None) -> float: ...

    def add_bot_event(self, event: str) -> float: ...

    @property
    def frustration(self) -> float: ...

    def explain(self) -> str: ...


ScoreText = Callable[[Sequence[str]], list[float]]


@dataclass(frozen=True)
class SentimentTools:
    """Mood and a batch scorer when the sentiment package provides them; `notes` say what's off."""

    mood_factory: Callable[[], MoodLike] | None
    score_texts: ScoreText | None
    notes: tuple[str, ...] = ()
    analyzer_status: str = "unavailable"  # "yes", "not used" or "unavailable"

    @property
    def description(self) -> str:
        mood = "Mood: yes" if self.mood_factory else "Mood: unavailable"
        analyzer = "Analyzer: yes" if self.score_texts else f"Analyzer: {self.analyzer_status}"
        return f"{mood}, {analyzer}"


def sentiment_tools(*, use_analyzer: bool = True) -> SentimentTools:
    """Find sentiment.Mood and sentiment.Analyzer at run time; either may be missing."""
    notes: list[str] = []
    try:
        from sentiment import Analyzer, Mood  # type: ignore[attr-defined]
    except (ImportError, AttributeError) as error:
        notes.append(f"sentiment package unavailable ({error}): using the given scores only")
        return SentimentTools(None, None, tuple(notes))
    score_texts: ScoreText | None = None
    if use_analyzer:
        try:
            analyzer = Analyzer().load()

            def score_texts(texts: Sequence[str]) -> list[float]:
                return [scores.score for scores in analyzer.score_batch(list(texts))]

        except Exception as error:  # a missing or broken model must not stop a replay
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            notes.append(f"sentiment Analyzer unavailable ({first_line}): given scores only")
            score_texts = None
        status = "yes" if score_texts else "unavailable"
    else:
        notes.append("Analyzer not used: turns without a given sentiment score count as neutral")
        status = "not used"
    return SentimentTools(Mood, score_texts, tuple(notes), status)


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class TurnResult:
    number: int  # 1-based
    turn: Turn
    sentiment: float | None
    sentiment_source: str  # "given", "analyzer" or "none"
    frustration: float | None
    negative_streak: int
    fallback_streak: int
    decision: Decision


@dataclass(frozen=True)
class ReplayResult:
    scenario: Scenario
    turns: list[TurnResult]

    @property
    def first_escalation(self) -> int | None:
        """1-based number of the first escalating turn, or None."""
        return next((t.number for t in self.turns if t.decision.escalate), None)


def replay_scenario(
    scenario: Scenario,
    settings: PolicySettings,
    *,
    tools: SentimentTools | None = None,
    prefer_given_scores: bool = True,
    stop_at_escalation: bool = False,
    conversation_id: str | None = None,
) -> ReplayResult:
    """Run every customer turn through Mood (if any) and `evaluate`."""
    tools = tools or SentimentTools(None, None)
    turns = scenario.turns
    scored: list[float | None] = [t.sentiment if prefer_given_scores else None for t in turns]
    sources = ["given" if s is not None else "none" for s in scored]
    missing = [i for i, s in enumerate(scored) if s is None]
    if missing and tools.score_texts is not None:
        for index, score in zip(missing, tools.score_texts([turns[i].text for i in missing]),
                                strict=True):  # fmt: skip
            scored[index], sources[index] = score, "analyzer"
    for index, turn in enumerate(turns):  # no analyzer: fall back to the labelled score
        if scored[index] is None and turn.sentiment is not None:
            scored[index], sources[index] = turn.sentiment, "given"

    mood = tools.mood_factory() if tools.mood_factory else None
    customer = scenario.customer.value() if scenario.customer else None
    negative_streak = fallback_streak = intent_streak = 0
    previous_intent: str | None = None
    escalated = False
    results: list[TurnResult] = []
    for number, (turn, score, source) in enumerate(zip(turns, scored, sources, strict=True), 1):
        negative_streak = update_negative_streak(negative_streak, score, settings)
        intent_streak = update_intent_streak(intent_streak, previous_intent, turn.intent, settings)
        previous_intent = turn.intent
        is_fallback = (
            turn.fallback
            if turn.fallback is not None
            else turn.intent in settings.triggers.fallbacks.intents
        )
        if turn.fallback is None:
            fallback_streak = update_fallback_streak(fallback_streak, turn.intent, settings)
        else:
            fallback_streak = fallback_streak + 1 if is_fallback else 0
        frustration = explanation = None
        if mood is not None:
            mood.add_customer_message(turn.text, score)
            # NLU already decided the bot's reply: a fallback intent gets the fallback answer.
            mood.add_bot_event("fallback" if is_fallback else "answer")
            frustration, explanation = mood.frustration, mood.explain()
        signals = Signals(
            conversation_id=conversation_id or scenario.name,
            intent=turn.intent,
            intent_confidence=turn.confidence,
            text=turn.text,
            frustration=frustration,
            frustration_explanation=explanation,
            consecutive_negative_turns=negative_streak,
            consecutive_fallbacks=fallback_streak,
            same_intent_turns=intent_streak,
            sentiment_score=score,
            customer=customer,
            order_value=turn.order_value,
            already_escalated=escalated,
            basket_value=turn.basket_value,
        )
        decision = evaluate(signals, settings)
        results.append(TurnResult(number, turn, score, source, frustration, negative_streak,
                                  fallback_streak, decision))  # fmt: skip
        escalated = escalated or decision.escalate
        if escalated and stop_at_escalation:
            break
    return ReplayResult(scenario, results)


def first_escalating_turn(
    scenario: Scenario, settings: PolicySettings, *, tools: SentimentTools | None = None
) -> int | None:
    """The 1-based turn at which the policy hands the conversation over, or None."""
    return replay_scenario(
        scenario, settings, tools=tools, stop_at_escalation=True
    ).first_escalation


# --------------------------------------------------------------------------- stored


OPEN_ORDER_STATUSES = ("pending", "processing", "shipped", "out_for_delivery")


def load_stored_conversation(database_url: str, conversation_id: str) -> Scenario:
    """A stored conversation as a scenario: its customer messages with intent and score."""
    from sqlalchemy import select

    from tandem.conversations.models import Conversation, Message
    from tandem.db import make_engine, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ScenarioError(f"no conversation {conversation_id!r} in {database_url}")
            messages = session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.sender == "customer")
                .order_by(Message.id)
            ).all()
            turns = [
                Turn(
                    text=m.text,
                    intent=m.intent,
                    confidence=m.intent_confidence,
                    sentiment=m.sentiment_score,
                )
                for m in messages
            ]
            if not turns:
                raise ScenarioError(f"conversation {conversation_id!r} has no customer messages")
            customer = _stored_customer(session, conversation)
    finally:
        engine.dispose()
    return Scenario(name=conversation_id, category="stored", customer=customer, turns=turns)


def _stored_customer(session: Any, conversation: Any) -> CustomerProfile | None:
    if conversation.customer_id is None:
        return None
    from sqlalchemy import func, select

    from tandem.business.models import Customer, Order

    customer = session.get(Customer, conversation.customer_id)
    if customer is None:
        return None
    open_order = session.scalar(
        select(func.max(Order.total)).where(
            Order.customer_id == customer.id, Order.status.in_(OPEN_ORDER_STATUSES)
        )
    )
    return CustomerProfile(
        verified=bool(conversation.customer_verified),
        tier=customer.tier,
        lifetime_value=float(customer.lifetime_value or 0),
        open_order_value=float(open_order) if open_order is not None else None,
    )
