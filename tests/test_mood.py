"""Mood: scripted conversations where frustration must (and must not) rise."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
from sentiment_fixtures import trained_model_path

from sentiment.fit_frustration import bot_event, dissatisfied, fit, read_uss, replay
from sentiment.mood import (
    COMPONENTS,
    STATE_VERSION,
    FrustrationModel,
    Mood,
    MoodSettings,
    carries_feeling,
    load_weights,
)

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
    for reason in ("2 fallbacks", "repeated question", "impatience", "the bot's last reply failed"):
        assert reason in text
    # The trend is still measured and listed, whatever weight the fit gave it (0 since the
    # correction / off-topic / bot-failed components, which carry what it did on USS).
    assert dict((n, v) for n, v, _ in mood.contributions())["trend"] > 0
    # Every reason carries its contribution in log-odds, largest first.
    shown = [float(x) for x in re.findall(r"\(([+-]\d+\.\d)\)", text)]
    assert shown and shown == sorted(shown, reverse=True)


def test_calm_conversation_stays_calm() -> None:
    mood, trace = play(CALM)
    assert max(trace) < 0.1
    assert not mood.should_escalate
    assert re.fullmatch(r"frustration 0\.0\d: calm", mood.explain())
    # A happy customer is less likely to be frustrated than the calm baseline.
    model = mood.settings.frustration_model
    assert mood.frustration < model.probability(model.intercept)


def test_one_polite_complaint_does_not_escalate() -> None:
    mood, _ = play([("My parcel arrived damaged, could you help me return it?", -0.7, "answer")])
    # It registers (well above a calm chat's ~0.02) without reaching the threshold.
    assert 0.05 < mood.frustration < mood.settings.escalation_threshold
    assert "negative message" in mood.explain()


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
        ("I have been waiting for days", "waiting ('waiting for days')"),
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
    assert all(value == 0.0 for _, value, _ in mood.contributions())


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


def test_components_are_kept_and_add_up_to_the_probability() -> None:
    mood, _ = play(ANGRY[:2])
    comps = mood.components()
    assert [c.name for c in comps] == list(COMPONENTS)
    model = mood.settings.frustration_model
    for c in comps:
        assert -1.0 <= c.raw <= 1.0
        assert c.contribution == pytest.approx(c.raw * c.weight)
        spec = model.components[c.name]
        assert c.weight == pytest.approx(spec.coef / spec.scale)
    logit = model.intercept + sum(c.contribution for c in comps)
    assert mood.frustration == pytest.approx(1 / (1 + math.exp(-logit)))
    # The structured breakdown lists EVERY component: (name, value, contribution).
    rows = mood.contributions()
    assert [r[0] for r in rows] == list(COMPONENTS)
    assert dict((n, v) for n, v, _ in rows)["fallbacks"] > 0
    brief = mood.brief()
    assert [r[0] for r in brief["contributions"]] == list(COMPONENTS)
    snap = mood.snapshot()
    assert snap["explanation"] == mood.explain()
    json.dumps(snap)
    json.dumps(brief)


def test_serialisation_round_trip_continues_identically() -> None:
    first, _ = play(ANGRY[:2])
    stored = json.loads(json.dumps(first.to_dict()))
    restored = Mood.from_dict(stored)
    assert restored.snapshot() == first.snapshot()
    _, a = play(ANGRY[2:], first)
    _, b = play(ANGRY[2:], restored)
    assert a == b
    assert Mood.from_dict({}).frustration == Mood().frustration
    with pytest.raises(ValueError):
        Mood.from_dict({"version": 99})


# A state stored before re-asks and waiting existed (version 1).
V1_STATE = {
    "version": 1, "customer_turns": 2, "ema": -0.45, "scores": [-0.2, -0.7],
    "recent": ["where is my order 10482", "where is my order 10482 it was due monday"],
    "total_repeats": 1, "consecutive_fallbacks": 2, "total_fallbacks": 2,
    "levels": {"repetition": 0.5, "caps": 0.0, "punctuation": 0.0, "profanity": 0.0,
               "threat": 0.0, "impatience": 0.0, "fallbacks": 1.0},
    "details": {"repetition": "repeated question", "fallbacks": "2 fallbacks"},
    "peak": 0.93,
}  # fmt: skip


def test_old_stored_state_still_loads() -> None:
    mood = Mood.from_dict(V1_STATE)
    assert mood.customer_turns == 2 and mood.ema == -0.45 and list(mood.scores) == [-0.2, -0.7]
    assert mood.levels["reasks"] == 0.0 and mood.levels["waiting"] == 0.0
    assert "2 fallbacks" in mood.explain()
    assert mood.peak == pytest.approx(mood.frustration)  # re-expressed on the fitted scale
    mood.add_customer_message("where is my order 10482??", -0.8)
    assert mood.to_dict()["version"] == STATE_VERSION


def test_form_reasks_count() -> None:
    def conversation(second_reply: str) -> tuple[Mood, float]:
        mood = Mood()
        mood.add_customer_message("I want to cancel my order", -0.1)
        mood.add_bot_event("answer", "What is your order number?")
        mood.add_customer_message("it's the blue dress one", 0.0)
        return mood, mood.add_bot_event("answer", second_reply)

    mood, again = conversation("Sorry, what is your order number?")
    _, moved_on = conversation("Thanks. Should I cancel the whole order or one item?")
    # The same turns, but the bot asks again instead of moving on: more frustrated.
    assert mood.levels["reasks"] > 0 and again > moved_on
    assert dict((n, c) for n, _, c in mood.contributions())["reasks"] > 0
    explicit = Mood()
    explicit.add_customer_message("hi", 0.0)
    explicit.add_bot_event("reask")
    explicit.add_bot_event("reask")
    assert explicit.levels["reasks"] == 1.0
    assert explicit.total_reasks == 2


def test_settings_from_dict_and_yaml(tmp_path: Path) -> None:
    settings = MoodSettings.from_mapping({"escalation_threshold": 0.3})
    assert settings.escalation_threshold == 0.3
    path = tmp_path / "mood.yml"
    path.write_text("escalation_threshold: 0.5\nema_alpha: 0.7\n")
    loaded = MoodSettings.from_yaml(path)
    assert loaded.escalation_threshold == 0.5
    assert loaded.ema_alpha == 0.7
    with pytest.raises(ValueError):
        MoodSettings.from_mapping({"nonsense": 1})


def _weights(**coefs: float) -> dict:
    return {
        "intercept": -3.0,
        "components": {name: {"coef": coefs.get(name, 0.0)} for name in COMPONENTS},
    }


def test_weights_are_data_passed_in_or_from_a_file(tmp_path: Path) -> None:
    only_fallbacks = FrustrationModel.from_mapping(_weights(fallbacks=6.0))
    mood = Mood(MoodSettings(model=only_fallbacks))
    mood.add_customer_message("WHY IS NOBODY ANSWERING??? this is ridiculous", -0.9)
    assert mood.frustration == pytest.approx(1 / (1 + math.exp(3.0)))  # nothing else counts
    mood.bot_fallback()
    mood.bot_fallback()
    assert mood.frustration == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert mood.explain().startswith("frustration 0.95: 2 fallbacks (+6.0)")
    path = tmp_path / "w.yaml"
    path.write_text(json.dumps(_weights(caps=4.0)))  # JSON is YAML
    shouting = Mood(MoodSettings(weights_file=path))
    shouting.add_customer_message("WHERE IS MY PARCEL", 0.0)
    assert shouting.frustration == pytest.approx(1 / (1 + math.exp(-1.0)))
    broken = _weights()
    del broken["components"]["caps"]
    with pytest.raises(ValueError, match="missing \\['caps'\\]"):
        FrustrationModel.from_mapping(broken)


def test_shipped_weights_were_fitted_and_say_how() -> None:
    model = load_weights()
    meta = model.metadata
    assert meta["command"].startswith("python -m sentiment.fit_frustration")
    assert meta["cv"] == "GroupKFold by dialogue"
    assert set(meta["data_files"]) == {"MWOZ.txt", "ReDial.txt", "CCPE.txt"}
    assert meta["cv_auc"]["overall"] > meta["sentiment_alone_auc"]["overall"]
    assert model.components["negativity"].fitted or model.components["message"].fitted
    # Every component raises the index when present (none may lower it).
    for name, spec in model.components.items():
        assert spec.coef >= 0, name


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
    assert set(brief) == {"frustration", "explanation", "ema", "contributions"}
    assert brief["frustration"] == mood.snapshot()["frustration"]
    assert brief["explanation"].startswith("frustration ")


# --------------------------------------------------------------------------- fitting

USS_SAMPLE = """\
USER\tHi, I need a cheap hotel in the north.\tHotel-Inform\t3,3,3
SYSTEM\tSorry, there are no cheap hotels in the north.\tHotel-NoOffer\t
USER\tReally? Then a cheap hotel in the north or the centre please.\tHotel-Inform\t2,2,3
SYSTEM\tThe Alpha is in the centre.\tHotel-Inform\t
USER\tGreat, thanks!\tgeneral-thank\t4,4,3
USER\tOVERALL\t\t3,3,3

USER\tWhat time does the museum open?\t\t3,3,3
SYSTEM\tIt opens at 9.\t\t
USER\tThanks, bye.\t\t3,4,3
USER\tOVERALL\t\t4,4,4
"""


def test_uss_reading_and_replay(tmp_path: Path) -> None:
    path = tmp_path / "MWOZ.txt"
    path.write_text(USS_SAMPLE)
    dialogues = read_uss(path)
    assert [len(d) for d in dialogues] == [5, 3]  # OVERALL rows dropped
    assert dissatisfied((2, 2, 3)) and not dissatisfied((2, 3, 3)) and dissatisfied((1, 3, 2))
    assert bot_event("Sorry, there are no cheap hotels in the north.") == "fallback"
    assert bot_event("The Alpha is in the centre.") == "answer"
    rows = replay([path], scores=[0.0, -0.6, 0.9, 0.0, 0.3])
    assert rows.labels == [0, 1, 0, 0, 0] and rows.dialogues == 2
    assert rows.groups[:3] == ["MWOZ.txt#0"] * 3 and rows.groups[3] == "MWOZ.txt#1"
    at_bad = dict(zip(COMPONENTS, rows.features[1], strict=True))
    assert at_bad["fallbacks"] > 0 and at_bad["message"] == pytest.approx(0.6)


def test_fit_is_non_negative_and_keeps_priors_for_rare_components() -> None:
    rng = random.Random(5)
    features, labels = [], []
    for _ in range(3000):
        row = dict.fromkeys(COMPONENTS, 0.0)
        row["message"] = rng.uniform(-1, 1)
        row["fallbacks"] = rng.choice([0.0, 0.0, 0.5, 1.0])
        row["repetition"] = rng.choice([0.0, 1.0])  # pure noise: must not lower the index
        logit = -2.5 + 2.0 * row["message"] + 2.0 * row["fallbacks"]
        labels.append(int(rng.random() < 1 / (1 + math.exp(-logit))))
        features.append([row[c] for c in COMPONENTS])
    result = fit(features, labels)
    assert result.fitted["message"] and result.fitted["fallbacks"]
    assert result.coef["message"] / result.scale["message"] == pytest.approx(2.0, rel=0.3)
    assert not result.fitted["threat"] and result.coef["threat"] > 0  # prior kept
    assert all(v >= 0 for v in result.coef.values())


# --------------------------------------------------------------------------- new signals


class FakeEncoder:
    """Stands in for sentiment.meaning's encoder: a fixed similarity per pair of texts."""

    def __init__(self, pairs: dict[frozenset[str], float], default: float = 0.0) -> None:
        self.pairs, self.default = pairs, default

    def similarity(self, a: str, b: str) -> float:
        return 1.0 if a == b else self.pairs.get(frozenset((a, b)), self.default)


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch):
    def install(pairs: dict[frozenset[str], float], default: float = 0.0) -> FakeEncoder:
        encoder = FakeEncoder(pairs, default)
        monkeypatch.setattr("sentiment.meaning.default_encoder", lambda: encoder)
        return encoder

    return install


def test_correction_counts_a_no_or_a_correction_but_not_a_polite_closing(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    for text in ("No, I said the blue one", "nope, not that one", "That's not my order",
                 "no", "I meant the linen shirt"):  # fmt: skip
        mood = Mood()
        mood.add_customer_message(text, 0.0)
        assert mood.features()["correction"] == 1.0, text
        assert "corrected the bot" in mood.explain()
    polite = ("No thanks, that's all", "No, that will be all. Goodbye!", "no problem")
    for text in (*polite, "Where is my order?", "Is the blue one in stock?", "It's wrong"):
        mood = Mood()
        mood.add_customer_message(text, 0.0)
        assert mood.features()["correction"] == 0.0, text
    # It describes the latest message only: the next message resets it.
    mood = Mood()
    mood.add_customer_message("No, I said size M", -0.2)
    mood.add_bot_event("answer", "Here is the shirt in size M.")
    before = mood.frustration
    mood.add_customer_message("Great, thanks", 0.5)
    assert mood.features()["correction"] == 0.0 and mood.frustration < before


def test_correction_raises_the_index(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    plain, corrected = Mood(), Mood()
    plain.add_customer_message("I want the blue one", -0.1)
    corrected.add_customer_message("No, I want the blue one", -0.1)
    assert corrected.frustration > plain.frustration
    assert dict((n, c) for n, _, c in corrected.contributions())["correction"] > 0


def test_bot_failed_is_the_latest_bot_turn(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    mood = Mood()
    mood.add_customer_message("Do you have the linen shirt in petite?", 0.0)
    calm = mood.frustration
    mood.add_bot_event("fallback")
    assert mood.features()["bot_failed"] == 1.0 and mood.frustration > calm
    mood.add_customer_message("petite linen shirt", 0.0)
    assert mood.features()["bot_failed"] == 1.0  # until the bot replies again
    mood.add_bot_event("answer", "Yes, the linen shirt comes in petite sizes.")
    assert mood.features()["bot_failed"] == 0.0
    assert mood.features()["fallbacks"] > 0  # the fallbacks level still remembers it


def test_off_topic_reply_by_meaning(fake_encoder) -> None:
    question, on, off = "where is my parcel", "your parcel is with dhl", "we sell gift cards"
    fake_encoder({frozenset((question, on)): 0.7, frozenset((question, off)): 0.05})
    good, bad = Mood(), Mood()
    for mood, reply in ((good, "Your parcel is with DHL"), (bad, "We sell gift cards!")):
        mood.add_customer_message("Where is my parcel?", -0.1)
        mood.add_bot_event("answer", reply)
    assert good.features()["off_topic"] == 0.0  # similarity 0.7: on the point
    assert bad.features()["off_topic"] == pytest.approx(0.9)  # (0.5 - 0.05) / 0.5
    assert bad.frustration > good.frustration
    assert "off the point" in bad.snapshot()["components"][COMPONENTS.index("off_topic")]["detail"]
    # No bot text, or the encoder switched off: the value reads 0 (the fallback).
    bad.add_bot_event("fallback")
    assert bad.features()["off_topic"] == 0.0
    off_mood = Mood(MoodSettings(meaning=False))
    off_mood.add_customer_message("Where is my parcel?", -0.1)
    off_mood.add_bot_event("answer", "We sell gift cards!")
    assert off_mood.features()["off_topic"] == 0.0


def test_rephrased_request_counts_as_repetition_by_meaning(fake_encoder) -> None:
    first, again = "can i send it back for free", "are returns without charge"
    fake_encoder({frozenset((first, again)): 0.84})
    mood = Mood()
    mood.add_customer_message("Can I send it back for free?", 0.0)
    mood.add_bot_event("answer", "Our store opens at 9.")
    mood.add_customer_message("Are returns without charge?", 0.0)
    assert mood.features()["repetition"] == pytest.approx(0.8)  # (0.84 - 0.6) / 0.3
    assert "in other words" in mood.explain()
    # Without the encoder the same two messages share no words: no repetition.
    plain = Mood(MoodSettings(meaning=False))
    plain.add_customer_message("Can I send it back for free?", 0.0)
    plain.add_customer_message("Are returns without charge?", 0.0)
    assert plain.features()["repetition"] == 0.0


def test_message_component_counts_negative_feeling_only(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    happy, neutral = Mood(), Mood()
    happy.add_customer_message("Lovely, thank you!", 0.9)
    neutral.add_customer_message("ok", 0.0)
    assert happy.features()["message"] == 0.0 and neutral.features()["message"] == 0.0
    sad = Mood()
    sad.add_customer_message("This is awful", -0.8)
    assert sad.features()["message"] == pytest.approx(0.8)


def test_meaning_encoder_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment import meaning

    monkeypatch.setenv("TANDEM_MEANING", "off")
    assert not meaning.available()


def test_version_2_state_loads(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    mood = Mood()
    mood.add_customer_message("Where is my order?", -0.3)
    state = mood.to_dict()
    state["version"] = 2
    del state["last_message"]
    restored = Mood.from_dict(state)
    assert restored.levels["correction"] == 0.0 and restored.last_message == ""
    assert restored.peak == pytest.approx(restored.frustration)


def test_the_bundled_encoder_reads_meaning() -> None:
    from sentiment import meaning

    if not meaning.available():
        pytest.skip("sentence encoder not installed here (the Mood falls back to word overlap)")
    encoder = meaning.MeaningEncoder()
    same = encoder.similarity("can i send it back for free", "are returns free of charge")
    other = encoder.similarity("can i send it back for free", "what colours does the scarf come in")
    assert same > other + 0.2
    assert encoder.similarity("where is my parcel", "where is my parcel") == pytest.approx(1.0)


def test_a_failing_encoder_never_breaks_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def similarity(self, a: str, b: str) -> float:
            raise RuntimeError("weights unreadable")

    monkeypatch.setattr(Mood, "_encoder", property(lambda self: Broken()))
    mood = Mood()
    mood.add_customer_message("where is my order, it has been two weeks", -0.4)
    mood.add_bot_event("answer", text="Our shop opens at 9 am.")
    mood.add_customer_message("where is my order, it has been two weeks now", -0.5)
    assert mood.features()["off_topic"] == 0.0
    assert 0.0 <= mood.frustration <= 1.0


# --------------------------------------------------------------------------- form answers

ASK_NUMBER = "Could you give me your order number? It has five digits, for example 12345."
ASK_EMAIL = "Thanks. What e-mail address did you use for the order?"


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        (ASK_EMAIL, "no sorry, it's 10005"),
        (ASK_EMAIL, "oops I meant 10483"),
        (ASK_EMAIL, "no, my email is jane.doe@example.com"),
        (ASK_NUMBER, "nope 10482"),
        ("Would you like a refund, or an exchange?", "no, exchange"),
        ("Are you sure you want to cancel this order?", "no"),
    ],
)
def test_supplying_or_correcting_ones_own_value_in_a_form_is_no_correction(
    fake_encoder, asked: str, answer: str
) -> None:
    fake_encoder({}, default=0.0)  # every reply as far from the message as can be
    # Against the same exchange with a bare value: the wording adds nothing.
    plain, corrected = Mood(), Mood()
    for mood, said in ((plain, "10005"), (corrected, answer)):
        mood.add_customer_message("where is my order 10482", 0.0)
        mood.add_bot_event("answer", asked)
        mood.add_customer_message(said, 0.0)
        mood.add_bot_event("answer", ASK_EMAIL)
    assert corrected.features()["correction"] == 0.0, answer
    assert corrected.features()["off_topic"] == 0.0, answer
    assert corrected.frustration == pytest.approx(plain.frustration), corrected.explain()


def test_a_value_is_no_correction_even_without_a_bot_question(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    mood = Mood()
    mood.add_customer_message("where is my order", 0.0)
    mood.add_bot_event("answer", "Your order #10482 was delivered on Monday.")
    mood.add_customer_message("no, I meant 10483", 0.0)
    assert mood.features()["correction"] == 0.0
    named = Mood()  # an NLU entity (a name) is a value too
    named.add_customer_message("no, Jane Doe", 0.0, spans=[(4, 12)])
    assert named.features()["correction"] == 0.0


def test_a_bot_form_question_or_greeting_is_not_off_topic(fake_encoder) -> None:
    fake_encoder({}, default=0.0)
    for message, reply in [
        ("where is my parcel please", ASK_NUMBER),
        ("where is my order 10482", ASK_EMAIL),
        ("i want to book an appointment", "What day would you like to come in?"),
        ("hi there", "Hi! I'm the shop's assistant. How can I help you today?"),
        ("thanks", "You're welcome!"),
        ("10482", "Your order #10482 was shipped with DHL on Monday."),  # a bare value
    ]:
        mood = Mood()
        mood.add_customer_message(message, 0.0)
        mood.add_bot_event("answer", reply)
        assert mood.features()["off_topic"] == 0.0, (message, reply)
    # A caller that knows the bot asked for a form field says so, whatever the text.
    mood = Mood()
    mood.add_customer_message("where is my parcel please", 0.0)
    mood.add_bot_event("ask", "Your order number, please.")
    assert mood.features()["off_topic"] == 0.0


def test_an_off_point_answer_counts_even_with_a_routine_question_after_it(fake_encoder) -> None:
    fake_encoder({}, default=0.0)
    mood = Mood()
    mood.add_customer_message("how do i return my shoes", -0.1)
    mood.add_bot_event("answer", "We sell gift cards from $25. Anything else I can help with?")
    assert mood.features()["off_topic"] == 1.0
    assert "off the point" in mood.explain()


@pytest.mark.parametrize(
    "contradiction",
    ["no that's not what I asked", "that's wrong", "you misunderstood me", "I didn't say that"],
)
def test_a_real_contradiction_of_the_bot_still_counts(fake_encoder, contradiction: str) -> None:
    fake_encoder({}, default=0.5)
    # After an answer, and after a form the bot started by mistake.
    for reply in ("Our shop opens at 9 am.", ASK_NUMBER):
        calm, mood = Mood(), Mood()
        for m in (calm, mood):
            m.add_customer_message("how do returns work", 0.0)
            m.add_bot_event("answer", reply)
        calm.add_customer_message("ok and how long does it take", 0.0)
        mood.add_customer_message(contradiction, 0.0)
        assert mood.features()["correction"] == 1.0, (contradiction, reply)
        assert mood.frustration > calm.frustration
        assert "corrected the bot" in mood.explain()


def test_version_3_state_loads_without_the_bot_question(fake_encoder) -> None:
    fake_encoder({}, default=0.5)
    mood = Mood()
    mood.add_customer_message("where is my order", 0.0)
    mood.add_bot_event("answer", ASK_NUMBER)
    state = mood.to_dict()
    assert state["bot_asked"] is True
    state["version"] = 3
    del state["bot_asked"]
    restored = Mood.from_dict(state)
    assert restored.bot_asked is False
    restored.add_customer_message("I meant the linen shirt", 0.0)
    assert restored.features()["correction"] == 1.0


@pytest.mark.parametrize(
    ("turns", "sarcastic"),
    [
        # Praise with a sign in the same message that things are going badly.
        ([("oh perfect, still processing. amazing", 0.6, None)], True),
        ([("love waiting 3 weeks for a jacket", 0.5, None)], True),
        # Praise right after a reply that failed.
        ([("do you price match?", 0.0, "fallback"), ("wow. so helpful.", 0.7, None)], True),
        # Praise after an answer, or with nothing going badly, is praise.
        ([("do you have it in blue?", 0.0, "answer"), ("perfect, thanks!", 0.9, None)], False),
        ([("great, can i also pay with paypal?", 0.4, None)], False),
    ],
    ids=["still", "waiting_weeks", "after_a_fallback", "after_an_answer", "plain"],
)
def test_sarcasm_needs_praise_and_a_sign_that_things_go_badly(
    fake_encoder, turns: list[Turn], sarcastic: bool
) -> None:
    fake_encoder({}, default=0.5)
    mood, _ = play(turns)
    assert (mood.features()["sarcasm"] == 1.0) is sarcastic
    if sarcastic:
        # The praise's positive score counts as negative, and the explanation says why.
        assert mood.scores[-1] < 0
        assert "sarcasm (" in mood.explain()
    else:
        assert mood.scores[-1] > 0
