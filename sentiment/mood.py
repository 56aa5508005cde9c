"""`Mood`: conversation-level frustration tracking, fed one event at a time.

The gateway calls ``add_customer_message(text, scores, spans)`` for every customer message
(``scores`` from :class:`sentiment.analyzer.Analyzer`, ``spans`` the NLU entities' offsets)
and ``add_bot_event("fallback")`` / ``add_bot_event("reask")`` /
``add_bot_event("answer")`` with the bot's text for the bot's replies.

Each component (sentiment level and trend, repeats, fallbacks, form re-asks, caps, "???",
profanity, threats, waiting, impatience, corrections of the bot, an off-topic bot reply)
has a raw value in [0, 1] (the rolling mood in [-1, 1]). A bot turn that asks the customer
something (a form question, a clarification) is a request, not an answer: it is never
off-topic, and a short "no" after it answers it rather than corrects the bot; nor is a
"no" or an "I meant" that gives a value (an order number, an e-mail) a correction.
Repeats and off-topic replies are judged by meaning with the bundled sentence encoder when
it is installed (:mod:`sentiment.meaning`); without it repeats fall back to word overlap
and the off-topic value reads 0. ``frustration`` is a calibrated probability: a logistic
model over the components whose weights were fitted on rated dialogues
(``python -m sentiment.fit_frustration``, stored as data in
``sentiment/data/frustration_weights.yaml``). Each component's contribution (log-odds,
weight x value) is kept so that ``explain()`` can say why. ``to_dict``/``from_dict``
round-trip the state as JSON-safe data for per-conversation storage. No torch import here.
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import fuzz

logger = logging.getLogger(__name__)

COMPONENTS: tuple[str, ...] = (
    "message", "negativity", "trend", "repetition", "fallbacks", "reasks", "caps",
    "punctuation", "profanity", "threat", "waiting", "impatience",
    "correction", "off_topic", "bot_failed", "sarcasm", "negation",
)  # fmt: skip
# Message-level signals: set by a message or bot turn, then fading turn by turn.
_LEVELS: tuple[str, ...] = COMPONENTS[3:]
# 2 added reasks, waiting and the bot's recent questions; 3 added correction, off_topic
# and the last customer message; 4 whether the bot's last turn asked something. 1-3 load.
STATE_VERSION = 4
# Levels a bot turn sets (they change with the bot's turns, not with each message).
_BOT_LEVELS = frozenset({"fallbacks", "off_topic", "bot_failed"})
# Levels about the latest message only (reset, not faded, by the next one).
_MESSAGE_ONLY = frozenset({"correction", "negation"})
WEIGHTS_FILE = "frustration_weights.yaml"
_FALLBACK_EVENTS = frozenset({"fallback", "nlu_fallback", "utter_default", "default"})
_REASK_EVENTS = frozenset({"reask", "form_reask", "repeat_question"})
# A caller that knows the bot asked for a form value says so; otherwise the text tells.
_ASK_EVENTS = frozenset({"ask", "form_question", *_REASK_EVENTS})
# Order numbers, e-mail addresses, phone numbers: data, not feelings (see carries_feeling).
_DATA = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+|[#+(]?\d[\d\s().-]*")
_WORD = re.compile(r"[^\W\d_]{2,}")
_QUESTION = re.compile(r"[^.?!\n]*\?")
_THREAT_WORDING = {
    "leave": "threat to leave",
    "review": "threat of a bad review",
    "chargeback": "threat of chargeback/legal action",
}


class ComponentWeight(BaseModel):
    """One component's coefficient, in log-odds per ``scale`` units of its raw value."""

    model_config = ConfigDict(extra="forbid")

    coef: float
    scale: float = Field(1.0, gt=0)
    fitted: bool = True
    note: str = ""

    @property
    def weight(self) -> float:
        """Log-odds per unit of the raw value."""
        return self.coef / self.scale


class FrustrationModel(BaseModel):
    """p(frustrated) = sigmoid(intercept + sum(coef * raw / scale)) over all COMPONENTS."""

    model_config = ConfigDict(extra="forbid")

    intercept: float
    components: dict[str, ComponentWeight]
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _all_components(self) -> FrustrationModel:
        missing = sorted(set(COMPONENTS) - set(self.components))
        unknown = sorted(set(self.components) - set(COMPONENTS))
        if missing or unknown:
            raise ValueError(f"frustration weights: missing {missing}, unknown {unknown}")
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FrustrationModel:
        return cls.model_validate(dict(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> FrustrationModel:
        return cls.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    def probability(self, logit: float) -> float:
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


@lru_cache(maxsize=8)
def load_weights(path: Path | None = None) -> FrustrationModel:
    """The fitted weights: a given file, else the package's sentiment/data copy."""
    return FrustrationModel.from_mapping(yaml.safe_load(_data_text(WEIGHTS_FILE, path)) or {})


class MoodSettings(BaseModel):
    """Weights and thresholds of the mood tracker (defaults work; load overrides from YAML)."""

    model_config = ConfigDict(extra="forbid")

    model: FrustrationModel | None = Field(
        None, description="fitted weights passed in; default: weights_file or the package's"
    )
    weights_file: Path | None = None
    # The index is a probability calibrated on USS (base rate 6%): 0.60 separates the labelled
    # handoff scenarios; the gateway's own threshold is handoff.yml's.
    escalation_threshold: float = Field(0.60, ge=0, le=1)
    ema_alpha: float = Field(0.5, gt=0, le=1, description="weight of the newest message")
    trend_window: int = Field(4, ge=2, description="customer turns in the slope")
    trend_full_slope: float = Field(
        0.4, gt=0, description="score drop per turn that counts as a full negative trend"
    )
    signal_decay: float = Field(
        0.6, ge=0, le=1, description="per customer turn fading of message-level signals"
    )
    repeat_similarity: float = Field(0.6, gt=0, le=1)
    repeat_lookback: int = Field(4, ge=1, description="earlier customer messages compared")
    repeat_min_tokens: int = Field(3, ge=1)
    repeat_saturation: int = Field(2, ge=1, description="repeats that count as full signal")
    fallback_saturation: int = Field(2, ge=1, description="consecutive fallbacks = full signal")
    reask_saturation: int = Field(2, ge=1, description="bot re-asks that count as full signal")
    caps_min_letters: int = Field(6, ge=1)
    correction_min_words: int = Field(
        3, ge=0, description="words after a 'no' that make it more than an answer to a question"
    )
    meaning: bool = Field(
        True, description="judge repeats and off-topic replies with the sentence encoder"
    )
    off_topic_below: float = Field(
        0.5, gt=0, le=1, description="reply-to-message similarity below which it is off the point"
    )
    meaning_repeat_from: float = Field(
        0.6, gt=0, lt=1, description="cosine to an earlier message where a rephrase starts"
    )
    meaning_repeat_full: float = Field(
        0.9, gt=0, le=1, description="cosine at which it counts as the same request in full"
    )
    explain_min_contribution: float = Field(0.1, ge=0, description="log-odds shown in reasons")
    phrases_file: Path | None = None
    profanity_file: Path | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> MoodSettings:
        return cls.model_validate(dict(data or {}))

    @classmethod
    def from_yaml(cls, path: str | Path) -> MoodSettings:
        return cls.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    @property
    def frustration_model(self) -> FrustrationModel:
        return self.model or load_weights(self.weights_file)


@dataclass(frozen=True, slots=True)
class Component:
    """A component's raw value, its weight (log-odds per unit) and what it means."""

    name: str
    raw: float
    weight: float
    detail: str = ""

    @property
    def contribution(self) -> float:
        """Log-odds this component adds to the frustration (weight x value)."""
        return self.raw * self.weight

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "raw": round(self.raw, 4),
            "weight": self.weight,
            "contribution": round(self.contribution, 4),
            "detail": self.detail,
        }


# --------------------------------------------------------------------------- lexicons


def _normalise(text: str) -> str:
    """Lower-case words separated by single spaces; apostrophes dropped ("I'm" -> "im")."""
    text = text.lower().replace("’", "'").replace("'", "")
    return " ".join(re.findall(r"[a-z0-9*]+", text))


@dataclass(frozen=True)
class _Lexicon:
    impatience: tuple[str, ...]
    waiting: tuple[str, ...]
    threats: tuple[tuple[str, str], ...]  # (phrase, group)
    stopwords: frozenset[str]
    profanity: frozenset[str]
    corrections: tuple[str, ...] = ()
    self_corrections: tuple[str, ...] = ()
    correction_openers: frozenset[str] = frozenset()
    closings: tuple[str, ...] = ()
    routine_questions: tuple[str, ...] = ()
    sarcasm: tuple[str, ...] = ()
    # sarcasm_context with the impatience and waiting phrases: signs things go badly
    sarcasm_signs: tuple[str, ...] = ()
    sarcasm_after_failure: tuple[str, ...] = ()
    negations: frozenset[str] = frozenset()


def _data_text(name: str, override: Path | None) -> str:
    if override is not None:
        return Path(override).read_text(encoding="utf-8")
    return resources.files("sentiment").joinpath("data", name).read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def _lexicon(phrases_file: Path | None, profanity_file: Path | None) -> _Lexicon:
    data = yaml.safe_load(_data_text("frustration.yaml", phrases_file)) or {}
    threats = tuple(
        (_normalise(p), group)
        for group, phrases in (data.get("threats") or {}).items()
        for p in phrases or ()
    )
    words = _data_text("profanity.txt", profanity_file).splitlines()
    return _Lexicon(
        impatience=tuple(_normalise(p) for p in data.get("impatience") or ()),
        waiting=tuple(_normalise(p) for p in data.get("waiting") or ()),
        threats=threats,
        stopwords=frozenset(_normalise(str(w)) for w in data.get("stopwords") or ()),
        profanity=frozenset(
            w.strip().lower() for w in words if w.strip() and not w.lstrip().startswith("#")
        ),
        corrections=tuple(_normalise(p) for p in data.get("corrections") or ()),
        self_corrections=tuple(_normalise(p) for p in data.get("self_corrections") or ()),
        correction_openers=frozenset(
            _normalise(str(w)) for w in data.get("correction_openers") or ()
        ),
        closings=tuple(_normalise(p) for p in data.get("closings") or ()),
        routine_questions=tuple(_normalise(p) for p in data.get("routine_questions") or ()),
        sarcasm=tuple(_normalise(p) for p in data.get("sarcasm") or ()),
        sarcasm_signs=tuple(
            _normalise(p)
            for key in ("sarcasm_context", "impatience", "waiting")
            for p in data.get(key) or ()
        ),
        sarcasm_after_failure=tuple(
            _normalise(p) for p in data.get("sarcasm_after_failure") or ()
        ),
        negations=frozenset(_normalise(str(w)) for w in data.get("negations") or ()),
    )


def _find(norm: str, phrases: Iterable[str]) -> list[str]:
    padded = f" {norm} "
    return [p for p in phrases if p and f" {p} " in padded]


# --------------------------------------------------------------------------- mood


def _score_of(scores: Any) -> float:
    """Accept SentimentScores, a mapping, a bare float or None (= neutral)."""
    if scores is None:
        return 0.0
    if isinstance(scores, int | float):
        return max(-1.0, min(1.0, float(scores)))
    if isinstance(scores, Mapping):
        if "score" in scores:
            return float(scores["score"])
        return float(scores.get("positive", 0.0)) - float(scores.get("negative", 0.0))
    return float(scores.score)


def _slope(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


class Mood:
    """Frustration of one conversation, updated message by message."""

    def __init__(self, settings: MoodSettings | None = None) -> None:
        self.settings = settings or MoodSettings()
        s = self.settings
        self.customer_turns = 0
        self.ema: float | None = None
        self.scores: deque[float] = deque(maxlen=s.trend_window)
        self.recent: deque[str] = deque(maxlen=s.repeat_lookback)  # normalised texts
        # The latest customer message, normalised, when it asks in words (for off_topic).
        self.last_message = ""
        self.bot_asked = False  # the bot's last turn asked the customer something
        self.bot_recent: deque[str] = deque(maxlen=s.repeat_lookback)  # the bot's questions
        self.total_repeats = 0
        self.total_reasks = 0
        self.consecutive_fallbacks = 0
        self.total_fallbacks = 0
        # Message-level signals fade by signal_decay each customer turn.
        self.levels: dict[str, float] = dict.fromkeys(_LEVELS, 0.0)
        self.details: dict[str, str] = {}
        self.peak = 0.0

    @property
    def _lex(self) -> _Lexicon:
        return _lexicon(self.settings.phrases_file, self.settings.profanity_file)

    # ------------------------------------------------------------------ events

    def add_customer_message(
        self, text: str, scores: Any = None, spans: Iterable[tuple[int, int]] = ()
    ) -> float:
        """Record a customer message and its sentiment; returns the new frustration index.
        `spans` are the NLU entities' offsets: values the customer gives (like an order
        number or an e-mail, which are found without them)."""
        s = self.settings
        spans = tuple(spans)
        score = _score_of(scores)
        norm = _normalise(text)
        sarcasm = self._sarcasm(norm)
        if sarcasm:
            # Praise said ironically: a model reads "so helpful" as positive; it is not.
            score = -abs(score)
        self.customer_turns += 1
        self.ema = score if self.ema is None else s.ema_alpha * score + (1 - s.ema_alpha) * self.ema
        self.scores.append(score)

        for key in _LEVELS:
            if key in _MESSAGE_ONLY:
                self.levels[key] = 0.0
            elif key not in _BOT_LEVELS:  # those change with the bot's turns, not here
                self.levels[key] *= s.signal_decay
        if sarcasm:
            self._signal("sarcasm", 1.0, sarcasm)
        self._signal("caps", self._caps(text), "caps")
        punct = 1.0 if re.search(r"[?!]{3,}", text) else 0.5 if re.search(r"[?!]{2}", text) else 0
        self._signal("punctuation", punct, "'???'/'!!!'")
        tokens = norm.split()
        swears = sorted({t for t in tokens if t in self._lex.profanity})
        self._signal("profanity", 1.0 if swears else 0.0, "profanity")
        threats = [(p, g) for p, g in self._lex.threats if f" {p} " in f" {norm} "]
        if threats:
            group = threats[0][1]
            self._signal("threat", 1.0, _THREAT_WORDING.get(group, f"threat ({group})"))
        for key in ("waiting", "impatience"):
            found = _find(norm, getattr(self._lex, key))
            if found:
                self._signal(key, 1.0, f"{key} ('{max(found, key=len)}')")

        given = gives_value(text, spans)
        correction = self._correction(norm, given)
        if correction:
            self._signal("correction", 1.0, f"corrected the bot ('{correction}')")
        negation = self._negation(norm, given)
        if negation:
            self._signal("negation", 1.0, f"says '{negation}'")

        if self._is_repeat(tokens, self.recent):
            self.total_repeats += 1
            n = self.total_repeats
            self._bump("repetition", "repeated question" + (f" x{n}" if n > 1 else ""))
        else:
            self._rephrased(norm, tokens)
        if len(tokens) >= s.repeat_min_tokens:
            self.recent.append(norm)
        # A bare value or a word or two ("10482", "thanks", "hi") asks nothing a reply
        # could miss; the words around values are the request.
        asks_in_words = len(_words(text, spans)) >= s.repeat_min_tokens
        self.last_message = norm if asks_in_words else ""
        return self._updated()

    def add_bot_event(self, event: str, text: str | None = None) -> float:
        """Record a bot turn: "fallback" (did not understand), "reask" (asked again for a
        form field), "ask" (asked for a form field) or anything else (answered). With the
        bot's ``text``, a question it already asked counts as a re-ask too, and a question
        in it makes the turn a request (not judged as off-topic)."""
        s = self.settings
        event = event.lower()
        if event in _FALLBACK_EVENTS:
            self.consecutive_fallbacks += 1
            self.total_fallbacks += 1
            level = min(1.0, self.consecutive_fallbacks / s.fallback_saturation)
            self.levels["fallbacks"] = max(self.levels["fallbacks"], level)
            n = self.consecutive_fallbacks
            self.details["fallbacks"] = f"{n} fallback{'s' if n != 1 else ''}"
        else:
            self.consecutive_fallbacks = 0
            self.levels["fallbacks"] *= s.signal_decay
        # The bot's latest reply itself failed (the fallbacks level remembers earlier ones).
        self.levels["bot_failed"] = 1.0 if event in _FALLBACK_EVENTS else 0.0
        self.details["bot_failed"] = "the bot's last reply failed"
        questions = self._questions(text)
        self.bot_asked = event in _ASK_EVENTS or bool(questions)
        # Only questions beyond a routine "anything else?" make the turn a request.
        lex = self._lex
        requests = [q for q in questions if not _find(_normalise(q), lex.routine_questions)]
        asked = event in _ASK_EVENTS or bool(requests)
        self._off_topic(None if asked else _without(text or "", questions))
        tokens = _normalise(text).split() if text and "?" in text else []
        if event in _REASK_EVENTS or self._is_repeat(tokens, self.bot_recent):
            self.total_reasks += 1
            n = self.total_reasks
            self._bump("reasks", "the bot asked again" + (f" x{n}" if n > 1 else ""))
        if len(tokens) >= s.repeat_min_tokens:
            self.bot_recent.append(" ".join(tokens))
        return self._updated()

    def bot_fallback(self) -> float:
        return self.add_bot_event("fallback")

    def bot_answered(self) -> float:
        return self.add_bot_event("answer")

    @property
    def sarcasm_now(self) -> str | None:
        """How the latest customer message reads as sarcasm ("sarcasm ('love waiting' with
        'for weeks')"), or None."""
        return self.details.get("sarcasm") if self.levels["sarcasm"] >= 1.0 else None

    @property
    def pushes_back(self) -> bool:
        """The latest customer message reads as pushing back: sarcasm, a correction of the
        bot or a negation ("no", "didn't") in it."""
        levels = self.levels
        return bool(self.sarcasm_now) or levels["correction"] > 0 or levels["negation"] > 0

    def _updated(self) -> float:
        index = self.frustration
        self.peak = max(self.peak, index)
        return index

    # ------------------------------------------------------------------ signals

    def _sarcasm(self, norm: str) -> str:
        """How the message reads as sarcasm ("" if it does not): praise ("love waiting",
        "oh perfect") with a sign in the same message that things are going badly
        ("still", "third time"), or ironic praise ("so helpful") right after a failed,
        repeated or off-topic bot reply. Praise alone is praise."""
        lex = self._lex
        praise = _find(norm, lex.sarcasm)
        context = _find(norm, lex.sarcasm_signs)
        if praise and context:
            said, sign = max(praise, key=len), max(context, key=len)
            return f"sarcasm ('{said}' with '{sign}')"
        ironic = _find(norm, lex.sarcasm_after_failure)
        going_badly = ("bot_failed", "off_topic", "reasks", "repetition")
        if ironic and any(self.levels[key] >= 0.5 for key in going_badly):
            return f"sarcasm ('{max(ironic, key=len)}' after a reply that did not help)"
        return ""

    def _signal(self, key: str, raw: float, detail: str) -> None:
        if raw > 0 and raw >= self.levels[key]:
            self.details[key] = detail
        self.levels[key] = max(self.levels[key], raw)

    def _bump(self, key: str, detail: str) -> None:
        # Each repeat adds 1/saturation on top of what is left of earlier ones (the level
        # already faded this turn, so undo that once).
        s = self.settings
        saturation = s.repeat_saturation if key == "repetition" else s.reask_saturation
        faded = self.levels[key] / s.signal_decay if s.signal_decay else 0.0
        self._signal(key, min(1.0, faded + 1 / saturation), detail)

    def _caps(self, text: str) -> float:
        letters = [c for c in text if c.isalpha()]
        if len(letters) < self.settings.caps_min_letters:
            return 0.0
        shouted = [w for w in re.findall(r"[A-Za-z]+", text) if len(w) >= 3 and w.isupper()]
        upper_share = sum(c.isupper() for c in letters) / len(letters)
        if len(shouted) >= 2 and upper_share >= 0.6:
            return 1.0
        # Partly shouted ("WHERE IS MY ORDER??? ok"): milder. Short capitals are usually
        # acronyms (UPS, DHL, ASAP), so they need company to count.
        long_ones = [w for w in shouted if len(w) >= 4]
        return 0.5 if any(len(w) >= 5 for w in shouted) or len(long_ones) >= 2 else 0.0

    @property
    def _encoder(self) -> Any:
        if not self.settings.meaning:
            return None
        from sentiment.meaning import default_encoder

        return default_encoder()

    def _correction(self, norm: str, gives_value: bool) -> str:
        """The phrase with which the customer contradicts the bot ("" if none).

        "That's not what I asked" counts after any bot turn. A "no" or an "I meant" counts
        unless it gives a value (the customer supplies or corrects their own data: "no
        sorry, it's 10005", "oops I meant 10483"), or it is a short answer to the bot's
        question ("no", "no, exchange"): fewer than `correction_min_words` more words."""
        lex = self._lex
        if self._is_closing(norm):
            return ""
        found = _find(norm, lex.corrections)
        if found:
            return max(found, key=len)
        if gives_value:
            return ""
        found = _find(norm, lex.self_corrections)
        first = norm.split(" ", 1)[0]
        if not found and first not in lex.correction_openers:
            return ""
        phrase = max(found, key=len) if found else first
        rest = f" {norm} ".replace(f" {phrase} ", " ", 1).split()
        if self.bot_asked and len(rest) < self.settings.correction_min_words:
            return ""
        return phrase if found else " ".join(norm.split()[:3])

    def _is_closing(self, norm: str) -> bool:
        """A message that opens with a polite closing ("no thanks", "no, that's all")."""
        return any(f"{norm} ".startswith(f"{c} ") for c in self._lex.closings)

    def _negation(self, norm: str, gives_value: bool) -> str:
        """The word with which the customer pushes back or reports a problem ("no", "not",
        "doesn't"; "" if none), unless it is a polite closing ("no thanks"), gives their
        own value ("no, it's 10005") or is a short answer to the bot's question ("no")."""
        lex = self._lex
        words = norm.split()
        found = next((w for w in words if w in lex.negations), "")
        if not found or gives_value:
            return ""
        if self._is_closing(norm):
            return ""
        if self.bot_asked and len(words) - 1 < self.settings.correction_min_words:
            return ""
        return found

    @staticmethod
    def _questions(text: str | None) -> list[str]:
        """The questions (of two words or more) in a bot turn's text."""
        return [q for q in _QUESTION.findall(text or "") if len(_WORD.findall(q)) >= 2]

    def _off_topic(self, text: str | None) -> None:
        """How little the bot's answer has to do with the customer's last message: 0 when
        the cosine of their meanings is off_topic_below or more, rising to 1 at 0
        (unrelated); 0 without the encoder, without the bot's text (None for a request)
        or when the customer's message asked nothing in words."""
        encoder = self._encoder
        reply = _normalise(text or "")
        if encoder is None or not reply or not self.last_message:
            self.levels["off_topic"] = 0.0
            return
        similarity = _similarity(encoder, self.last_message, reply)
        if similarity is None:
            self.levels["off_topic"] = 0.0
            return
        below = self.settings.off_topic_below
        self.levels["off_topic"] = min(1.0, max(0.0, (below - similarity) / below))
        self.details["off_topic"] = f"bot reply off the point (similarity {similarity:.2f})"

    def _rephrased(self, norm: str, tokens: list[str]) -> None:
        """A request said again in other words: the repetition level rises with the
        meaning's closeness to an earlier message (from meaning_repeat_from to _full)."""
        s = self.settings
        encoder = self._encoder
        if encoder is None or len(tokens) < s.repeat_min_tokens or not self.recent:
            return
        closeness = [_similarity(encoder, norm, previous) for previous in self.recent]
        if None in closeness:
            return
        best = max(c for c in closeness if c is not None)
        span = max(1e-6, s.meaning_repeat_full - s.meaning_repeat_from)
        raw = min(1.0, max(0.0, (best - s.meaning_repeat_from) / span))
        self._signal("repetition", raw, f"asked again in other words (similarity {best:.2f})")

    def _is_repeat(self, tokens: list[str], earlier: Iterable[str]) -> bool:
        s = self.settings
        if len(tokens) < s.repeat_min_tokens:
            return False
        content = {t for t in tokens if t not in self._lex.stopwords}
        norm = " ".join(tokens)
        for previous in earlier:
            prev_content = {t for t in previous.split() if t not in self._lex.stopwords}
            union = content | prev_content
            jaccard = len(content & prev_content) / len(union) if union else 0.0
            similar = fuzz.token_sort_ratio(norm, previous) / 100
            if max(jaccard, similar) >= s.repeat_similarity:
                return True
        return False

    # ------------------------------------------------------------------ results

    @property
    def trend(self) -> float:
        """Least-squares slope of the sentiment score over the last trend_window turns."""
        return _slope(list(self.scores))

    def features(self) -> dict[str, float]:
        """Each component's raw value (what the weights were fitted on): the sentiment of
        the latest message and the rolling mood in [-1, 1] (negative = positive feeling,
        which lowers the index), every other signal in [0, 1]."""
        s = self.settings
        slope = self.trend
        # A falling score matters only if it ends below neutral ("great" -> "ok" is fine).
        falling = bool(self.scores) and self.scores[-1] < 0 and slope < 0
        return {
            "message": max(0.0, -self.scores[-1]) if self.scores else 0.0,
            "negativity": -(self.ema or 0.0),
            "trend": min(1.0, -slope / s.trend_full_slope) if falling else 0.0,
            **{key: self.levels[key] for key in _LEVELS},
        }

    def components(self) -> list[Component]:
        model = self.settings.frustration_model
        ema = self.ema or 0.0
        last = self.scores[-1] if self.scores else 0.0
        details = {
            **self.details,
            "message": f"{'negative' if last < 0 else 'positive'} message ({last:+.2f})",
            "negativity": f"{'negative' if ema < 0 else 'positive'} mood ({ema:+.2f})",
            "trend": f"negative trend over {len(self.scores)} turns",
        }
        return [
            Component(key, raw, model.components[key].weight, details.get(key, key))
            for key, raw in self.features().items()
        ]

    @property
    def logit(self) -> float:
        model = self.settings.frustration_model
        return model.intercept + sum(c.contribution for c in self.components())

    @property
    def frustration(self) -> float:
        """Calibrated probability that the customer is frustrated at this point."""
        return self.settings.frustration_model.probability(self.logit)

    @property
    def should_escalate(self) -> bool:
        return self.frustration >= self.settings.escalation_threshold

    def contributions(self) -> list[tuple[str, float, float]]:
        """(name, value, contribution in log-odds) for EVERY component, in COMPONENTS order."""
        return [(c.name, round(c.raw, 4), round(c.contribution, 4)) for c in self.components()]

    def explain(self) -> str:
        """E.g. "frustration 0.81: 2 fallbacks (+1.9), caps (+0.6), negative trend (+0.4)"."""
        parts = sorted(
            (
                c
                for c in self.components()
                if c.contribution >= self.settings.explain_min_contribution
            ),
            key=lambda c: c.contribution,
            reverse=True,
        )
        reasons = ", ".join(f"{c.detail} ({c.contribution:+.1f})" for c in parts) or "calm"
        return f"frustration {self.frustration:.2f}: {reasons}"

    def brief(self) -> dict[str, Any]:
        """The short form staff and the log show: index, explanation, rolling score and
        each component's (name, value, contribution)."""
        return {
            "frustration": round(self.frustration, 4),
            "explanation": self.explain(),
            "ema": None if self.ema is None else round(self.ema, 4),
            "contributions": [list(c) for c in self.contributions()],
        }

    def snapshot(self) -> dict[str, Any]:
        """What a dashboard needs: index, escalation flag, explanation and components."""
        return {
            "frustration": round(self.frustration, 4),
            "escalate": self.should_escalate,
            "threshold": self.settings.escalation_threshold,
            "ema": None if self.ema is None else round(self.ema, 4),
            "trend": round(self.trend, 4),
            "explanation": self.explain(),
            "intercept": round(self.settings.frustration_model.intercept, 4),
            "components": [c.to_dict() for c in self.components()],
        }

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (settings are not included: the gateway supplies them)."""
        return {
            "version": STATE_VERSION,
            "customer_turns": self.customer_turns,
            "ema": self.ema,
            "scores": list(self.scores),
            "recent": list(self.recent),
            "last_message": self.last_message,
            "bot_asked": self.bot_asked,
            "bot_recent": list(self.bot_recent),
            "total_repeats": self.total_repeats,
            "total_reasks": self.total_reasks,
            "consecutive_fallbacks": self.consecutive_fallbacks,
            "total_fallbacks": self.total_fallbacks,
            "levels": dict(self.levels),
            "details": dict(self.details),
            "peak": self.peak,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], settings: MoodSettings | None = None) -> Mood:
        """Load a stored state; version 1 (before re-asks and waiting) loads with them at 0."""
        mood = cls(settings)
        if not data:
            return mood
        if data.get("version") not in (1, 2, 3, STATE_VERSION):
            raise ValueError(f"unsupported Mood state version {data.get('version')!r}")
        mood.customer_turns = int(data["customer_turns"])
        mood.ema = None if data["ema"] is None else float(data["ema"])
        mood.scores.extend(float(x) for x in data["scores"])
        mood.recent.extend(str(x) for x in data["recent"])
        mood.last_message = str(data.get("last_message", ""))
        mood.bot_asked = bool(data.get("bot_asked", False))
        mood.bot_recent.extend(str(x) for x in data.get("bot_recent", ()))
        mood.total_repeats = int(data["total_repeats"])
        mood.total_reasks = int(data.get("total_reasks", 0))
        mood.consecutive_fallbacks = int(data["consecutive_fallbacks"])
        mood.total_fallbacks = int(data["total_fallbacks"])
        mood.levels.update({k: float(v) for k, v in data["levels"].items() if k in mood.levels})
        mood.details.update({str(k): str(v) for k, v in data["details"].items()})
        # The peak is recomputed on the current weights (a v1 peak was on the old scale).
        stored_peak = float(data.get("peak", 0.0))
        mood.peak = stored_peak if data.get("version") == STATE_VERSION else mood.frustration
        return mood


def carries_feeling(text: str, spans: Iterable[tuple[int, int]] = ()) -> bool:
    """False for a bare answer to a form ("10482", "jane@example.com", "yes").

    `spans` are NLU entity offsets to ignore as well. A model still scores such a
    message, but an order number or an e-mail address says nothing about how the
    customer feels, so a Mood should not count it.
    """
    return len(_words(text, spans)) >= 2


def gives_value(text: str, spans: Iterable[tuple[int, int]] = ()) -> bool:
    """Whether a message gives a value: an NLU entity, or digits / an e-mail address."""
    return any(True for _ in spans) or _DATA.search(text) is not None


def _words(text: str, spans: Iterable[tuple[int, int]] = ()) -> list[str]:
    """The words of a message besides its values (entity spans, numbers, e-mails)."""
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return _WORD.findall(_DATA.sub(" ", text))


def _without(text: str, parts: Iterable[str]) -> str:
    for part in parts:
        text = text.replace(part, " ")
    return text


def _similarity(encoder: Any, a: str, b: str) -> float | None:
    """The encoder's cosine, or None when it fails: a broken encoder never breaks a turn
    (the Mood then judges by words, as without it)."""
    try:
        return float(encoder.similarity(a, b))
    except Exception:
        logger.exception("the sentence encoder failed; judging repeats by words")
        return None
