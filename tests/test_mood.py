"""Mood: scripted conversations where frustration must (and must not) rise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sentiment_fixtures import trained_model_path

from sentiment.mood import COMPONENTS, Mood, MoodSettings, carries_feeling

Turn = tuple[str, float, str | None]  # customer text, sentiment score, bot event after it


def play(turns: list[Turn], mood: Mood | None = None) -> tuple[Mood, list[float]]:
    mood = mood or Mood()
    trace = []
    for text, score, bot in turns:
        trace.append(mood.add_customer_message(text, score))
        if bot:
            trace.append(mood.add_bot_event(bot))
    return mood, trace


ANGRY: list[Turn] = [
    ("Hi, where is my order 10482?", 0.0, "fallback"),
    ("Where is my order 10482? It was due Monday", -0.4, "fallback"),
    ("WHERE IS MY ORDER??? this is ridiculous", -0.9, None),
]

CALM: list[Turn] = [
    ("Hi! Do you have the linen shirt in size M?", 0.1, "answer"),
    ("Great, thanks. How much is shipping to Canada?", 0.6, "answer"),
    ("OK. Are you open on Sunday?", 0.0, "answer"),
    ("Perfect, thank you so much!", 0.9, "answer"),
]


def test_frustration_rises_and_escalates() -> None:
    mood, trace = play(ANGRY)
    assert trace[-1] >= trace[0]
    assert trace == sorted(trace)  # never falls in this conversation
    assert mood.should_escalate
    text = mood.explain()
    assert re.match(r"^frustration \d\.\d\d: ", text)
    for reason in ("2 fallbacks", "caps", "repeated question", "impatience", "negative trend"):
        assert reason in text


def test_calm_conversation_stays_calm() -> None:
    mood, trace = play(CALM)
    assert max(trace) < 0.1
    assert not mood.should_escalate
    assert mood.explain() == "frustration 0.00: calm"


def test_one_polite_complaint_does_not_escalate() -> None:
    mood, _ = play([("My parcel arrived damaged, could you help me return it?", -0.7, "answer")])
    assert 0.1 < mood.frustration < mood.settings.escalation_threshold
    assert "negative mood" in mood.explain()


def test_frustration_fades_when_things_go_well() -> None:
    mood, trace = play(ANGRY)
    _, calm_trace = play(
        [
            ("ok thanks, that tracking link works", 0.5, "answer"),
            ("great, it says tomorrow. thank you!", 0.9, "answer"),
        ],
        mood,
    )
    assert calm_trace[-1] < trace[-1] / 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I will file a chargeback with my bank", "threat of chargeback/legal action"),
        ("Enjoy your one star review on Trustpilot", "threat of a bad review"),
        ("Cancel my account, I'm taking my business elsewhere", "threat to leave"),
        ("this is the third time I ask", "impatience ('third time')"),
        ("What the f*ck is going on", "profanity"),
        ("hello??? anyone???", "'???'/'!!!'"),
        ("I NEED THIS FIXED TODAY", "caps"),
    ],
)
def test_signals_from_data_files(text: str, reason: str) -> None:
    mood = Mood()
    mood.add_customer_message(text, 0.0)
    assert reason in mood.explain()


def test_acronyms_and_order_numbers_are_not_shouting() -> None:
    mood, _ = play([("Is my UPS parcel 10482 coming by DHL or USPS?", 0.0, "answer")])
    assert mood.frustration == 0.0


def test_rephrased_question_counts_as_repeat() -> None:
    mood, _ = play(
        [
            ("how do I reset my password", 0.0, "answer"),
            ("how can I reset the password", -0.1, "answer"),
        ]
    )
    assert "repeated question" in mood.explain()
    other, _ = play(
        [
            ("how do I reset my password", 0.0, "answer"),
            ("do you ship to Canada", 0.0, "answer"),
        ]
    )
    assert "repeated" not in other.explain()


def test_components_are_kept_and_sum_to_index() -> None:
    mood, _ = play(ANGRY[:2])
    comps = mood.components()
    assert [c.name for c in comps] == list(COMPONENTS)
    for c in comps:
        assert 0.0 <= c.raw <= 1.0
        assert c.contribution == pytest.approx(c.raw * c.weight)
    assert mood.frustration == pytest.approx(min(1.0, sum(c.contribution for c in comps)))
    snap = mood.snapshot()
    assert snap["explanation"] == mood.explain()
    json.dumps(snap)


def test_serialisation_round_trip_continues_identically() -> None:
    first, _ = play(ANGRY[:2])
    stored = json.loads(json.dumps(first.to_dict()))
    restored = Mood.from_dict(stored)
    assert restored.snapshot() == first.snapshot()
    _, a = play(ANGRY[2:], first)
    _, b = play(ANGRY[2:], restored)
    assert a == b
    assert Mood.from_dict({}).frustration == 0.0
    with pytest.raises(ValueError):
        Mood.from_dict({"version": 99})


def test_settings_from_dict_and_yaml(tmp_path: Path) -> None:
    settings = MoodSettings.from_mapping(
        {"escalation_threshold": 0.3, "weights": {"fallbacks": 0.9}}
    )
    assert settings.weights.fallbacks == 0.9 and settings.weights.caps == 0.15
    mood = Mood(settings)
    mood.add_customer_message("hi", 0.0)
    mood.bot_fallback()
    mood.bot_fallback()
    assert mood.should_escalate
    path = tmp_path / "mood.yml"
    path.write_text("escalation_threshold: 0.5\nweights:\n  caps: 0.0\n")
    loaded = MoodSettings.from_yaml(path)
    assert loaded.escalation_threshold == 0.5 and loaded.weights.caps == 0.0
    with pytest.raises(ValueError):
        MoodSettings.from_mapping({"weights": {"nonsense": 1}})


def test_custom_phrase_file(tmp_path: Path) -> None:
    phrases = tmp_path / "phrases.yaml"
    phrases.write_text("impatience: [tick tock]\nthreats: {}\nstopwords: []\n")
    mood = Mood(MoodSettings(phrases_file=phrases))
    mood.add_customer_message("tick tock, still here", 0.0)
    assert "impatience ('tick tock')" in mood.explain()


@pytest.mark.model
def test_accepts_real_analyzer_scores() -> None:
    from sentiment.analyzer import Analyzer

    analyzer = Analyzer(trained_model_path())
    mood = Mood()
    texts = [
        "hi, my refund still hasn't arrived",
        "I asked about my refund yesterday, where is my refund",
        "THIS IS RIDICULOUS. I want my money back or I'm calling my bank",
    ]
    trace = [
        mood.add_customer_message(t, s)
        for t, s in zip(texts, analyzer.score_batch(texts), strict=True)
    ]
    assert trace[-1] > trace[0]
    assert mood.should_escalate, mood.explain()


def test_form_answers_carry_no_feeling_and_entities_are_ignored() -> None:


    assert not carries_feeling("10482")
    assert not carries_feeling("jane@example.com")
    assert not carries_feeling("+1 (312) 555-0142")
    assert carries_feeling("this is taking forever")
    # An entity span (e.g. a product name) is ignored like data.
    assert not carries_feeling("tailored blazer", [(0, 15)])


def test_brief_is_the_short_form_of_the_snapshot() -> None:


    mood = Mood()
    brief = mood.brief()
    assert set(brief) == {"frustration", "explanation", "ema"}
    assert brief["frustration"] == mood.snapshot()["frustration"]
    assert brief["explanation"].startswith("frustration ")
