"""The Analyzer on the real default model, plus the evaluate/train helpers."""

from __future__ import annotations

import json
import math
import random
import threading
from pathlib import Path

import pytest
from sentiment_fixtures import trained_model_path

from sentiment.analyzer import (
    Analyzer,
    SentimentModelError,
    SentimentScores,
    Speller,
    canonical,
    label_mapping,
)
from sentiment.augment import (
    STYLES,
    caps,
    epoch_variants,
    no_punctuation,
    perturb,
    styled,
    typos,
)
from sentiment.evaluate import InputError, load_dataset, parse_mapping
from sentiment.evaluate import main as evaluate_main
from sentiment.train import REPORT_FILE, TrainConfig, default_model_path, is_trained

NEGATIVE = [
    "This is the worst service I have ever had, my order never arrived.",
    "I'm furious, you charged me twice and nobody answers my emails.",
    "Absolutely unacceptable, the jacket came torn and dirty.",
]
POSITIVE = [
    "Thank you so much, the refund arrived quickly. Great service!",
    "I love the dress, it fits perfectly. You made my day!",
    "Amazing support, Maria solved everything in two minutes. Thanks!",
]
# Clear complaints and clear praise written in different ways (issue 11: a plain complaint
# once scored +0.16). None of them is a corpus row.
CLEAR_COMPLAINTS = [
    "This is the worst service I have ever had, my order never arrived.",
    "worst service i have ever had my order never arrived",
    "THIS IS THE WORST SERVICE I HAVE EVER HAD",
    "I am very disappointed, the package came damaged and nobody replied to my email.",
    "Three weeks and still no refund. Terrible.",
    "The delivery driver was rude and left my parcel out in the rain.",
    "I've never been treated so badly by a shop.",
    "my order never showed up and your support keeps ignoring me",
]
CLEAR_PRAISE = [
    "Thank you so much, the refund arrived quickly. Great service!",
    "best service I have ever had, thank you!",
    "The staff were lovely and my order came a day early, thanks!",
    "really happy with my new jacket, great quality",
]
NEUTRAL = [
    "What are your opening hours on Saturday?",
    "Can I change the delivery address for order 10482?",
    "Do you ship to Canada?",
]


@pytest.fixture(scope="session")
def model_path() -> Path:
    return trained_model_path()


@pytest.fixture(scope="session")
def analyzer(model_path: Path) -> Analyzer:
    return Analyzer(model_path).load()  # the default settings: int8


@pytest.fixture(scope="session")
def fp32_analyzer(model_path: Path) -> Analyzer:
    return Analyzer(model_path, quantize=False).load()


def test_default_model_is_cached_and_stable(model_path: Path) -> None:
    assert is_trained(model_path)
    assert default_model_path() == model_path
    report = json.loads((model_path / REPORT_FILE).read_text())
    assert report["labels"] == ["negative", "neutral", "positive"]
    assert report["held_out"]["macro_f1"] > 0.7


def test_lazy_loading(model_path: Path) -> None:
    lazy = Analyzer(model_path)
    assert not lazy.loaded
    lazy.score("hello")
    assert lazy.loaded


def test_api_shape_and_ranges(analyzer: Analyzer) -> None:
    result = analyzer.score("Where is my parcel?")
    assert isinstance(result, SentimentScores)
    assert math.isclose(result.negative + result.neutral + result.positive, 1.0, abs_tol=1e-5)
    assert -1.0 <= result.score <= 1.0
    assert math.isclose(result.score, result.positive - result.negative)
    assert result.label in {"negative", "neutral", "positive"}
    assert set(result.to_dict()) == {"negative", "neutral", "positive", "score", "label"}
    assert analyzer.score_batch([]) == []
    with pytest.raises(TypeError):
        analyzer.score_batch("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("texts", "label"), [(NEGATIVE, "negative"), (POSITIVE, "positive"), (NEUTRAL, "neutral")]
)
def test_obvious_examples(analyzer: Analyzer, texts: list[str], label: str) -> None:
    for result, text in zip(analyzer.score_batch(texts), texts, strict=True):
        assert result.label == label, (text, result)
        if label == "negative":
            assert result.score < -0.5
        elif label == "positive":
            assert result.score > 0.5


@pytest.mark.parametrize(("text"), CLEAR_COMPLAINTS)
def test_clear_complaints_score_clearly_negative(analyzer: Analyzer, text: str) -> None:
    result = analyzer.score(text)
    assert result.label == "negative" and result.score < -0.4, result


@pytest.mark.parametrize(("text"), CLEAR_PRAISE)
def test_clear_praise_scores_clearly_positive(analyzer: Analyzer, text: str) -> None:
    result = analyzer.score(text)
    assert result.label == "positive" and result.score > 0.4, result


def test_canonical_form() -> None:
    assert canonical("I DON'T understand, where is my refund?!") == (
        "i dont understand where is my refund"
    )
    # Emoticons carry sentiment and stay; handles and links (already normalised) too.
    assert canonical("@user thanks:) see http, bye :( <3") == "@user thanks :) see http bye :( <3"
    assert canonical("meet at 1:30pm (see above): ok") == "meet at 1 30pm see above ok"
    assert canonical("so angry 😡!!!") == "so angry 😡"
    assert canonical("...") == ""


def test_speller_mends_only_unknown_words() -> None:
    vocab = {"the": 1, "service": 2, "order": 3, "never": 4, "arrived": 5, "outrage": 6}
    speller = Speller(vocab, frozenset({"outage", "vegan"}))
    assert speller("the servcie") == "the service"  # swapped letters
    assert speller("ordr teh arived") == "order teh arrived"  # 4+ letters only
    assert speller("outage") == "outage"  # an English word the vocabulary lacks
    assert speller("orders") == "orders"  # an inflection of a known word
    assert speller("xervice") == "xervice"  # the first letter is kept
    assert canonical("The SERVCIE, honestly!", speller) == "the service honestly"


def test_canonical_scoring_can_be_switched_off(model_path: Path) -> None:
    assert Analyzer(model_path).canonical_form
    plain = Analyzer(model_path, quantize=False, canonical_form=False)
    both = Analyzer(model_path, quantize=False, canonical_form=True)
    text = "WHERE IS MY ORDER??? nobody answers!!!"
    lone = plain.score(text)
    assert both.score(text) != lone  # averaged with the canonical form
    # A message already in canonical form is scored once, the same either way.
    same = "where is my order"
    assert math.isclose(plain.score(same).score, both.score(same).score, abs_tol=1e-6)


def test_batch_equals_single_float32(fp32_analyzer: Analyzer) -> None:
    texts = [*NEGATIVE, *POSITIVE, *NEUTRAL, "", "ok", "x" * 3000]
    batch = fp32_analyzer.score_batch(texts)
    for text, together in zip(texts, batch, strict=True):
        alone = fp32_analyzer.score(text)
        assert math.isclose(alone.negative, together.negative, abs_tol=1e-4)
        assert math.isclose(alone.positive, together.positive, abs_tol=1e-4)


def test_batch_close_to_single_int8_default(analyzer: Analyzer) -> None:
    # int8 activation scales are per batch, so scores may move: within 0.005 for most
    # messages, up to ~0.2 for the rare one the model is unsure about. Labels must hold
    # where the model is sure (a message near a class boundary may tip either way).
    assert analyzer.quantize
    texts = [*NEGATIVE, *POSITIVE, *NEUTRAL]
    batch = analyzer.score_batch([*texts, "", "ok", "x" * 3000])
    for text, together in zip(texts, batch, strict=False):
        alone = analyzer.score(text)
        if max(alone.negative, alone.neutral, alone.positive) >= 0.6:
            assert alone.label == together.label, text
        assert abs(alone.score - together.score) < 0.25, text


def test_thread_safety(analyzer: Analyzer) -> None:
    texts = NEGATIVE + POSITIVE + NEUTRAL
    single = [analyzer.score(t).score for t in texts]
    batched = [s.score for s in analyzer.score_batch(texts)]
    expected = single + batched
    errors: list[BaseException] = []
    results: dict[int, list[float]] = {}
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            out: list[float] = []
            for _ in range(3):
                out.extend(analyzer.score(t).score for t in texts)
                out.extend(s.score for s in analyzer.score_batch(texts))
            results[n] = out
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6
    for out in results.values():
        for i, value in enumerate(out):
            assert math.isclose(value, expected[i % len(expected)], abs_tol=1e-4)


def test_missing_model_path_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SentimentModelError) as info:
        Analyzer(tmp_path / "nope").score("hi")
    message = str(info.value)
    assert "SENTIMENT_MODEL" in message and "python -m sentiment.train" in message


def test_missing_model_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENTIMENT_MODEL", str(tmp_path / "missing"))
    with pytest.raises(SentimentModelError, match="SENTIMENT_MODEL"):
        Analyzer().load()


def test_broken_model_dir_gives_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ this is not json")
    with pytest.raises(SentimentModelError) as info:
        Analyzer(tmp_path).load()
    assert "SENTIMENT_MODEL" in str(info.value)
    assert "python -m sentiment.train" in str(info.value)
    assert info.value.__cause__ is None  # one error, not a chain of library tracebacks


def test_truncated_weights_give_clear_error(model_path: Path, tmp_path: Path) -> None:
    for f in model_path.iterdir():
        if f.is_file():
            data = f.read_bytes()
            (tmp_path / f.name).write_bytes(data[:1000] if f.suffix == ".safetensors" else data)
    with pytest.raises(SentimentModelError, match="SENTIMENT_MODEL"):
        Analyzer(tmp_path).load()


def test_hub_id_offline_never_downloads() -> None:
    analyzer = Analyzer("cardiffnlp/twitter-roberta-base-sentiment-latest", allow_hub=False)
    with pytest.raises(SentimentModelError, match="SENTIMENT_MODEL"):
        analyzer.load()


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [0, 1, 2]),
        ({0: "negative", 1: "neutral", 2: "positive"}, [0, 1, 2]),
        ({0: "Positive", 1: "Negative", 2: "Neutral"}, [2, 0, 1]),
        ({0: "NEG", 1: "NEU", 2: "POS"}, [0, 1, 2]),
        ({0: "NEGATIVE", 1: "POSITIVE"}, [0, 2]),
        ({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"}, [0, 0, 1, 2, 2]),
    ],
)
def test_label_mapping(id2label: dict[int, str], expected: list[int]) -> None:
    assert label_mapping(id2label) == expected


def test_label_mapping_rejects_unknown() -> None:
    with pytest.raises(SentimentModelError):
        label_mapping({0: "joy", 1: "anger", 2: "fear"})


def test_evaluate_inputs(tmp_path: Path) -> None:
    good = tmp_path / "d.tsv"
    good.write_text("msg\tgold\nI love it\tpos\nterrible\tneg\nopen at 9?\tneu\n")
    data = load_dataset(good, text_col="msg", label_col="gold")
    assert data.labels == [2, 0, 1]
    assert parse_mapping("a=positive, b=negative") == {"a": "positive", "b": "negative"}
    with pytest.raises(InputError):
        load_dataset(good, text_col="text", label_col="gold")
    with pytest.raises(InputError):
        parse_mapping("a=happy")
    weird = tmp_path / "w.csv"
    weird.write_text("text,label\nhello,4\n")
    with pytest.raises(InputError, match="--map"):
        load_dataset(weird)
    assert load_dataset(weird, mapping={"4": "positive"}).labels == [2]


def test_evaluate_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_main([str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,happy\n")
    assert evaluate_main([str(bad)]) == 2
    assert "unknown label" in capsys.readouterr().err


def test_evaluate_cli_runs(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "mini.csv"
    rows = [(t, "negative") for t in NEGATIVE] + [(t, "positive") for t in POSITIVE]
    data.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))
    assert evaluate_main([str(data), "--model", str(model_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "VADER" in out and "confusion" in out


# --------------------------------------------------------------------------- writing styles


def test_style_variants_are_deterministic_and_light() -> None:
    text = "@SkyVistaAir I don't understand, where is my refund?! see https://x.example/a."
    assert no_punctuation(text) == (
        "@SkyVistaAir I dont understand where is my refund see https://x.example/a."
    )
    assert caps("where is it?") == "WHERE IS IT?"
    assert styled([text] * 3, "typos", 7) == styled([text] * 3, "typos", 7)
    slipped = typos(text, random.Random(1), rate=1.0)
    assert slipped.split()[0] == "@SkyVistaAir" and "https://x.example/a." in slipped
    # One slip per long word at most: the words stay recognisable.
    for before, after in zip(text.split(), slipped.split(), strict=True):
        assert abs(len(before) - len(after)) <= 1
    with pytest.raises(ValueError, match="unknown style"):
        perturb(text, "leetspeak", random.Random(0))


def test_training_mixes_in_variants_of_the_training_rows() -> None:
    texts = [f"Thank you so much for sorting order {i} so quickly!" for i in range(200)]
    first = epoch_variants(texts, 0.5, 101)
    assert first == epoch_variants(texts, 0.5, 101)  # fixed seed
    assert first != epoch_variants(texts, 0.5, 102)  # a new draw each epoch
    changed = sum(a != b for a, b in zip(first, texts, strict=True))
    assert 60 <= changed <= 140
    assert epoch_variants(texts, 0.0, 1) == texts
    assert TrainConfig().augment == 0.5


def test_real_model_keeps_its_verdict_across_styles(fp32_analyzer: Analyzer) -> None:
    texts = [*NEGATIVE, *POSITIVE, *NEUTRAL]
    original = [s.label for s in fp32_analyzer.score_batch(texts)]
    for style in STYLES:
        restyled = [s.label for s in fp32_analyzer.score_batch(styled(texts, style, 3))]
        assert restyled == original, style
