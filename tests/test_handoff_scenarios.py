"""The labelled scenarios through the per-turn step, the dry-run CLI and stored replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.policy import PolicySettings, load_policy
from handoff.replay import (
    Scenario,
    ScenarioError,
    SentimentTools,
    load_scenarios,
    replay_scenario,
    sentiment_tools,
)
from tandem import dryrun
from tandem.config import PROJECT_ROOT
from tandem.dryrun import load_stored_conversation

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = DATA / "handoff_scenarios.yml"
# Labelled as what should happen; the shipped policy is known to get these wrong.
KNOWN_HARD = {
    "polite_but_stuck_answered_wrong",  # the repeat is caught one turn before the label
    "sarcasm_love_waiting",  # sarcasm scored positive
    "souring_impatience",  # escalates one turn earlier than labelled
    # With hand-given scores (-0.4, -0.8) its "damn ... what the hell" turn stays under the
    # threshold 0.60: profanity keeps its prior and the scenario has no bot text.
    "souring_profanity",
}


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return load_scenarios(SCENARIOS)


@pytest.fixture(scope="module")
def tools() -> SentimentTools:
    # Hand-given scores keep this deterministic; the Analyzer is measured in bench/handoff.py.
    return sentiment_tools(use_analyzer=False)


def test_the_scenario_set_is_broad(scenarios: list[Scenario]) -> None:
    assert len(scenarios) >= 40
    assert len({s.name for s in scenarios}) == len(scenarios)
    calm = [s for s in scenarios if s.escalate_at is None]
    assert len(calm) >= 15
    categories = {s.category for s in scenarios}
    assert {"calm", "souring", "explicit", "fallbacks", "vip", "legal", "cancellation",
            "sarcasm", "polite_stuck", "complaint", "purchase"} <= categories  # fmt: skip
    for scenario in scenarios:
        assert scenario.escalate_at is None or scenario.escalate_at <= len(scenario.turns)


def test_policy_matches_the_labels(scenarios: list[Scenario], tools: SentimentTools) -> None:
    settings = load_policy(PROJECT_ROOT / "handoff.yml")
    wrong = {
        s.name: (s.escalate_at, replay_scenario(s, settings, tools=tools).first_escalation)
        for s in scenarios
    }
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert set(wrong) <= KNOWN_HARD, f"unexpected disagreements (expected, got): {wrong}"


def test_deterministic_triggers_fire_on_their_turn(scenarios: list[Scenario]) -> None:
    """Every non-sentiment trigger fires exactly on its labelled turn."""
    without_mood = SentimentTools()
    settings = PolicySettings()
    for scenario in scenarios:
        if scenario.category in {"explicit", "fallbacks", "vip", "cancellation", "complaint",
                                 "purchase"}:  # fmt: skip
            got = replay_scenario(scenario, settings, tools=without_mood).first_escalation
            assert got == scenario.escalate_at, scenario.name


VALUE_ONLY = ("vip_verified_asks_hours", "high_lifetime_value_verified", "open_order_verified")


def test_high_value_mode_decides_whether_value_alone_hands_off(scenarios: list[Scenario]) -> None:
    without_mood = SentimentTools()
    priority = PolicySettings()
    escalate = PolicySettings.from_mapping({"triggers": {"high_value": {"mode": "escalate"}}})
    for name in VALUE_ONLY:
        scenario = next(s for s in scenarios if s.name == name)
        assert replay_scenario(scenario, priority, tools=without_mood).first_escalation is None
        assert replay_scenario(scenario, escalate, tools=without_mood).first_escalation == 1
    later = next(s for s in scenarios if s.name == "high_value_calm_lookup_then_asks_for_person")
    result = replay_scenario(later, priority, tools=without_mood)
    assert result.first_escalation == 3
    decision = result.turns[2].decision
    assert decision.priority == 4 + 1  # asked for a person (4), raised by high value
    assert decision.summary == "asked for a person; high-value customer: lifetime value $2,022"


def test_later_turns_are_marked_already_escalated(scenarios: list[Scenario]) -> None:
    scenario = next(s for s in scenarios if s.name == "explicit_request_after_faq")
    extended = scenario.model_copy(update={"turns": [*scenario.turns, scenario.turns[-1]]})
    result = replay_scenario(extended, PolicySettings(), tools=SentimentTools())
    assert [t.decision.action for t in result.turns] == ["stay", "stay", "escalate", "stay"]
    assert [n.code for n in result.turns[-1].decision.notes] == ["already_escalated"]


def test_invalid_scenario_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("scenarios:\n  - name: x\n    turns:\n      - {txt: hi}\n")
    with pytest.raises(ScenarioError, match=r"bad.yml: invalid scenario\n.*turns.0.text"):
        load_scenarios(path)
    path.write_text("turns: []\n")
    with pytest.raises(ScenarioError, match="turns"):
        load_scenarios(path)


def test_dryrun_prints_every_turn(capsys: pytest.CaptureFixture[str]) -> None:
    code = dryrun.main([str(SCENARIOS), "--scenario", "legal_lawyer", "--no-analyzer"])
    out = capsys.readouterr().out
    assert code == 0
    assert "my refund is 3 weeks late" in out
    assert "ESCALATE p6" in out
    assert "legal language: 'lawyer'" in out
    assert "expected turn 2: as expected" in out


def test_dryrun_single_conversation_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert dryrun.main([str(DATA / "handoff_dryrun_example.yml"), "--no-analyzer"]) == 0
    out = capsys.readouterr().out
    assert "late_order_turns_sour" in out
    assert "customer claims VIP but is not verified" in out


def test_dryrun_reports_a_bad_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "handoff.yml"
    policy.write_text("triggers:\n  legal:\n    priority: high\n")
    assert dryrun.main([str(SCENARIOS), "--policy", str(policy), "--no-analyzer"]) == 2
    assert "triggers.legal.priority" in capsys.readouterr().err


def test_replay_a_stored_conversation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tandem.business.models import Customer
    from tandem.conversations.models import Message
    from tandem.conversations.service import create_conversation
    from tandem.db import make_engine, migrate, session_scope

    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        customer = Customer(name="Val Ip", email="val@example.com", tier="vip",
                            lifetime_value=3100)  # fmt: skip
        session.add(customer)
        session.flush()
        conversation = create_conversation(session, customer_id=customer.id, verified_via="signed")
        for sender, text, intent, score in [
            ("customer", "hi", "greet", 0.2),
            ("bot", "Hello! How can I help?", None, None),
            ("customer", "where is my order", "order_status", -0.1),
        ]:
            session.add(Message(conversation_id=conversation.id, sender=sender, text=text,
                                intent=intent, intent_confidence=0.9 if intent else None,
                                sentiment_score=score))  # fmt: skip
        conversation_id = conversation.id
    engine.dispose()

    scenario = load_stored_conversation(url, conversation_id)
    assert [t.text for t in scenario.turns] == ["hi", "where is my order"]
    assert scenario.customer is not None
    assert (scenario.customer.verified, scenario.customer.tier) == (True, "vip")
    result = replay_scenario(scenario, PolicySettings(), tools=SentimentTools())
    assert result.first_escalation is None  # value alone raises priority, never hands off
    escalate = PolicySettings.from_mapping({"triggers": {"high_value": {"mode": "escalate"}}})
    result = replay_scenario(scenario, escalate, tools=SentimentTools())
    assert result.first_escalation == 1
    assert result.turns[0].decision.summary == "customer tier VIP; lifetime value $3,100 ≥ $2,000"

    assert dryrun.main(["--database-url", url, "--conversation", conversation_id,
                        "--no-analyzer"]) == 0  # fmt: skip
    assert "high-value customer: tier VIP" in capsys.readouterr().out
    with pytest.raises(ScenarioError, match="no conversation 'missing'"):
        load_stored_conversation(url, "missing")


# ------------------------------------------------------------------ unscripted scenarios
UNSCRIPTED = DATA / "handoff_scenarios_unscripted.yml"
STRANGERS = DATA / "handoff_scenarios_strangers.yml"
HOLDOUT = DATA / "handoff_scenarios_holdout.yml"


def _figures(scenarios: list[Scenario]) -> tuple[float, float, list[str]]:
    settings = load_policy(PROJECT_ROOT / "handoff.yml")
    tp = fp = fn = 0
    misses = []
    for scenario in scenarios:
        got = replay_scenario(scenario, settings, tools=SentimentTools()).first_escalation
        want = scenario.escalate_at
        tp += want is not None and got is not None
        fp += want is None and got is not None
        fn += want is not None and got is None
        if (want is None) != (got is None):
            misses.append(f"{scenario.name}: expected {want}, got {got}")
    return tp / max(1, tp + fp), tp / max(1, tp + fn), misses


@pytest.mark.parametrize(("path", "count"), [(UNSCRIPTED, 90), (STRANGERS, 40)])
def test_the_unscripted_needs_go_to_a_person_and_nothing_else_does(path: Path, count: int) -> None:
    """Written from the kinds of need without looking at the policy (the tuning sets)."""
    scenarios = load_scenarios(path)
    assert len(scenarios) >= count
    precision, recall, misses = _figures(scenarios)
    assert precision >= 0.95 and recall >= 0.95, misses


@pytest.mark.parametrize(
    "category",
    ["browsing", "price_question", "order_status_routine", "vip_routine", "bot_challenge_ok",
     "booking_smooth", "returns_policy", "polite_fallback_once"],
)  # fmt: skip
def test_no_handoff_for_browsing_or_routine_lookups(category: str) -> None:
    settings = load_policy(PROJECT_ROOT / "handoff.yml")
    calm = [s for s in load_scenarios(UNSCRIPTED) if s.category == category]
    assert calm, category
    for scenario in calm:
        got = replay_scenario(scenario, settings, tools=SentimentTools()).first_escalation
        assert got is None, scenario.name


@pytest.mark.parametrize(
    "category",
    ["wholesale", "accessibility", "legal_threat", "safety", "payment_dispute",
     "asks_for_person", "anyone_there", "vip_order_problem", "urgent_high_value_change",
     "angry_caps"],
)  # fmt: skip
def test_each_need_goes_to_a_person(category: str) -> None:
    """(Form loops are offered a person by the form first, and escalate only if the
    customer goes round once more: see tests/test_handoff_turn.py.)"""
    settings = load_policy(PROJECT_ROOT / "handoff.yml")
    needs = [s for s in load_scenarios(UNSCRIPTED) if s.category == category]
    assert needs, category
    for scenario in needs:
        got = replay_scenario(scenario, settings, tools=SentimentTools()).first_escalation
        assert got is not None, scenario.name


def test_the_held_out_set_is_separate_and_loads() -> None:
    """Never tuned on: only bench/handoff.py reports its figures."""
    held_out = load_scenarios(HOLDOUT)
    assert len(held_out) >= 30
    tuned = [*load_scenarios(UNSCRIPTED), *load_scenarios(SCENARIOS)]
    assert not {s.name for s in tuned} & {s.name for s in held_out}


def test_the_second_annotator_labelled_every_tuning_scenario_with_a_real_turn() -> None:
    """bench/handoff.py compares the two annotators: every tuning scenario has exactly one
    second label, null or a turn the conversation has."""
    import yaml

    from bench.handoff import SCENARIO_SETS, SECOND_ANNOTATOR, annotator_agreement

    second = yaml.safe_load(SECOND_ANNOTATOR.read_text(encoding="utf-8"))["labels"]
    assert set(second) == {"scripted", "unscripted", "strangers"}
    turns: dict[str, dict[str, tuple[int | None, int | None]]] = {}
    for set_name, labels in second.items():
        scenarios = load_scenarios(SCENARIO_SETS[set_name])
        assert set(labels) == {s.name for s in scenarios}
        for scenario in scenarios:
            label = labels[scenario.name]
            assert label is None or 1 <= label <= len(scenario.turns), scenario.name
        # The policy escalating exactly where the sets' own labels say.
        turns[set_name] = {s.name: (s.escalate_at, s.escalate_at) for s in scenarios}
    (line,) = annotator_agreement(turns)
    assert "on either person's turn" in line and "recall" in line
