"""Replay a scripted conversation through the one per-turn step (`handoff.turn`).

Shared by the dry-run CLI (`python -m tandem.dryrun`), the scenario tests and
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
            handoff_request: complaint  # optional: an action asked for a person
            bot: "what the bot said"  # optional: lets the step see the bot going in circles

A dry-run file holds one scenario at the top level (the same keys, without `scenarios`).

Each customer turn goes through `handoff.turn.decide_turn`, the step the gateway runs on
every customer message. After the first escalation later turns carry `already_escalated`.
Loading a stored conversation as a scenario is the app's job (`tandem.dryrun`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handoff import turn as turn_step
from handoff.policy import CustomerValue, Decision, PolicySettings
from handoff.state import HandoffState
from sentiment.mood import Mood


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
    handoff_request: str | None = None
    bot: str | None = None


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


ScoreText = Callable[[Sequence[str]], list[float]]


@dataclass(frozen=True)
class SentimentTools:
    """A batch scorer when a sentiment model is available; `notes` say what is off."""

    score_texts: ScoreText | None = None
    notes: tuple[str, ...] = ()
    analyzer_status: str = "not used"  # "yes", "not used" or "unavailable"

    @property
    def description(self) -> str:
        analyzer = "Analyzer: yes" if self.score_texts else f"Analyzer: {self.analyzer_status}"
        return f"Mood: yes, {analyzer}"


def sentiment_tools(*, use_analyzer: bool = True) -> SentimentTools:
    """The sentiment Analyzer's scorer when its model loads; given scores only otherwise."""
    if not use_analyzer:
        return SentimentTools(
            None, ("Analyzer not used: turns without a given sentiment score count as neutral",)
        )
    try:
        from sentiment.analyzer import Analyzer

        analyzer = Analyzer().load()
    except Exception as error:  # a missing or broken model must not stop a replay
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        note = f"sentiment Analyzer unavailable ({first_line}): given scores only"
        return SentimentTools(None, (note,), "unavailable")

    def score_texts(texts: Sequence[str]) -> list[float]:
        return [scores.score for scores in analyzer.score_batch(list(texts))]

    return SentimentTools(score_texts, (), "yes")


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class TurnResult:
    number: int  # 1-based
    turn: Turn
    sentiment: float | None
    sentiment_source: str  # "given", "analyzer" or "none"
    frustration: float
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

    mood = Mood()
    state = HandoffState()
    customer: CustomerValue | None = scenario.customer.value() if scenario.customer else None
    escalated = False
    results: list[TurnResult] = []
    for number, (turn, score, source) in enumerate(zip(turns, scored, sources, strict=True), 1):
        facts = turn_step.TurnFacts(
            text=turn.text,
            intent=turn.intent,
            confidence=turn.confidence,
            sentiment=score,
            fallback=turn.fallback,
            handoff_request=turn.handoff_request,
            order_value=turn.order_value,
            basket_value=turn.basket_value,
            bot_texts=(turn.bot,) if turn.bot else (),
        )
        outcome = turn_step.decide_turn(
            facts,
            state,
            mood,
            customer,
            settings,
            conversation_id=conversation_id or scenario.name,
            already_escalated=escalated,
        )
        state, mood, decision = outcome.state, outcome.mood, outcome.decision
        results.append(
            TurnResult(
                number,
                turn,
                score,
                source,
                mood.frustration,
                state.negative_streak,
                state.fallback_streak,
                decision,
            )
        )
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
