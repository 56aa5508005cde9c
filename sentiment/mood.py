"""`Mood`: conversation-level frustration tracking, fed one event at a time.

The gateway calls ``add_customer_message(text, scores)`` for every customer message
(``scores`` from :class:`sentiment.analyzer.Analyzer`) and ``add_bot_event("fallback")``
/ ``add_bot_event("answer")`` for the bot's replies. ``frustration`` is one index in
[0, 1]: the clipped sum of weighted components, each kept with its raw value, weight and
contribution so that ``explain()`` can say why. ``to_dict``/``from_dict`` round-trip the
state as JSON-safe data for per-conversation storage. No torch import here.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz

COMPONENTS: tuple[str, ...] = (
    "negativity", "trend", "repetition", "fallbacks", "caps",
    "punctuation", "profanity", "threat", "impatience",
)  # fmt: skip
STATE_VERSION = 1
# Order numbers, e-mail addresses, phone numbers: data, not feelings (see carries_feeling).
_DATA = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+|[#+(]?\d[\d\s().-]*")
_WORD = re.compile(r"[^\W\d_]{2,}")
_THREAT_WORDING = {
    "leave": "threat to leave",
    "review": "threat of a bad review",
    "chargeback": "threat of chargeback/legal action",
}


class MoodWeights(BaseModel):
    """Weight of each component; the index is min(1, sum(weight * raw))."""

    model_config = ConfigDict(extra="forbid")

    negativity: float = Field(0.45, ge=0)
    trend: float = Field(0.20, ge=0)
    repetition: float = Field(0.30, ge=0)
    fallbacks: float = Field(0.35, ge=0)
    caps: float = Field(0.15, ge=0)
    punctuation: float = Field(0.10, ge=0)
    profanity: float = Field(0.25, ge=0)
    threat: float = Field(0.45, ge=0)
    impatience: float = Field(0.35, ge=0)


class MoodSettings(BaseModel):
    """Weights and thresholds of the mood tracker (defaults work; load overrides from YAML)."""

    model_config = ConfigDict(extra="forbid")

    weights: MoodWeights = Field(default_factory=MoodWeights)
    escalation_threshold: float = Field(0.7, ge=0, le=1)
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
    caps_min_letters: int = Field(6, ge=1)
    explain_min_contribution: float = Field(0.03, ge=0)
    phrases_file: Path | None = None
    profanity_file: Path | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> MoodSettings:
        return cls.model_validate(dict(data or {}))

    @classmethod
    def from_yaml(cls, path: str | Path) -> MoodSettings:
        return cls.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    raw: float
    weight: float
    detail: str = ""

    @property
    def contribution(self) -> float:
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
    threats: tuple[tuple[str, str], ...]  # (phrase, group)
    stopwords: frozenset[str]
    profanity: frozenset[str]


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
        threats=threats,
        stopwords=frozenset(_normalise(str(w)) for w in data.get("stopwords") or ()),
        profanity=frozenset(
            w.strip().lower() for w in words if w.strip() and not w.lstrip().startswith("#")
        ),
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
        self.total_repeats = 0
        self.consecutive_fallbacks = 0
        self.total_fallbacks = 0
        # Message-level signals fade by signal_decay each customer turn.
        self.levels: dict[str, float] = {
            k: 0.0
            for k in (
                "repetition",
                "caps",
                "punctuation",
                "profanity",
                "threat",
                "impatience",
                "fallbacks",
            )
        }
        self.details: dict[str, str] = {}
        self.peak = 0.0

    @property
    def _lex(self) -> _Lexicon:
        return _lexicon(self.settings.phrases_file, self.settings.profanity_file)

    # ------------------------------------------------------------------ events

    def add_customer_message(self, text: str, scores: Any = None) -> float:
        """Record a customer message and its sentiment; returns the new frustration index."""
        s = self.settings
        score = _score_of(scores)
        self.customer_turns += 1
        self.ema = score if self.ema is None else s.ema_alpha * score + (1 - s.ema_alpha) * self.ema
        self.scores.append(score)

        for key in ("repetition", "caps", "punctuation", "profanity", "threat", "impatience"):
            self.levels[key] *= s.signal_decay
        norm = _normalise(text)
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
        impatient = _find(norm, self._lex.impatience)
        if impatient:
            self._signal("impatience", 1.0, f"impatience ('{max(impatient, key=len)}')")

        if self._is_repeat(tokens):
            self.total_repeats += 1
            # Each repeat adds 1/saturation on top of what is left of earlier ones.
            level = min(1.0, self.levels["repetition"] / s.signal_decay + 1 / s.repeat_saturation)
            n = self.total_repeats
            self._signal("repetition", level, "repeated question" + (f" x{n}" if n > 1 else ""))
        if len(tokens) >= s.repeat_min_tokens:
            self.recent.append(norm)
        index = self.frustration
        self.peak = max(self.peak, index)
        return index

    def add_bot_event(self, event: str) -> float:
        """Record a bot turn: "fallback" (did not understand) or anything else (answered)."""
        s = self.settings
        if event.lower() in {"fallback", "nlu_fallback", "utter_default", "default"}:
            self.consecutive_fallbacks += 1
            self.total_fallbacks += 1
            level = min(1.0, self.consecutive_fallbacks / s.fallback_saturation)
            self.levels["fallbacks"] = max(self.levels["fallbacks"], level)
            n = self.consecutive_fallbacks
            self.details["fallbacks"] = f"{n} fallback{'s' if n != 1 else ''}"
        else:
            self.consecutive_fallbacks = 0
            self.levels["fallbacks"] *= s.signal_decay
        index = self.frustration
        self.peak = max(self.peak, index)
        return index

    def bot_fallback(self) -> float:
        return self.add_bot_event("fallback")

    def bot_answered(self) -> float:
        return self.add_bot_event("answer")

    # ------------------------------------------------------------------ signals

    def _signal(self, key: str, raw: float, detail: str) -> None:
        if raw > 0 and raw >= self.levels[key]:
            self.details[key] = detail
        self.levels[key] = max(self.levels[key], raw)

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

    def _is_repeat(self, tokens: list[str]) -> bool:
        s = self.settings
        if len(tokens) < s.repeat_min_tokens or not self.recent:
            return False
        content = {t for t in tokens if t not in self._lex.stopwords}
        norm = " ".join(tokens)
        for previous in self.recent:
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

    def components(self) -> list[Component]:
        s, w = self.settings, self.settings.weights
        ema = self.ema or 0.0
        slope = self.trend
        # A falling score matters only if it ends below neutral ("great" -> "ok" is fine).
        falling = bool(self.scores) and self.scores[-1] < 0 and slope < 0
        trend_raw = min(1.0, -slope / s.trend_full_slope) if falling else 0.0
        out = [
            Component("negativity", max(0.0, -ema), w.negativity, f"negative mood ({ema:+.2f})"),
            Component("trend", trend_raw, w.trend, f"negative trend over {len(self.scores)} turns"),
        ]
        for key in COMPONENTS[2:]:
            detail = self.details.get(key, key)
            out.append(Component(key, self.levels[key], getattr(w, key), detail))
        return out

    @property
    def frustration(self) -> float:
        return min(1.0, sum(c.contribution for c in self.components()))

    @property
    def should_escalate(self) -> bool:
        return self.frustration >= self.settings.escalation_threshold

    def explain(self) -> str:
        """E.g. "frustration 0.81: negative trend over 3 turns, 2 fallbacks, caps"."""
        parts = sorted(
            (
                c
                for c in self.components()
                if c.contribution >= self.settings.explain_min_contribution
            ),
            key=lambda c: c.contribution,
            reverse=True,
        )
        reasons = ", ".join(c.detail for c in parts) or "calm"
        return f"frustration {self.frustration:.2f}: {reasons}"

    def brief(self) -> dict[str, Any]:
        """The short form staff and the log show: index, explanation and rolling score."""
        return {
            "frustration": round(self.frustration, 4),
            "explanation": self.explain(),
            "ema": None if self.ema is None else round(self.ema, 4),
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
            "total_repeats": self.total_repeats,
            "consecutive_fallbacks": self.consecutive_fallbacks,
            "total_fallbacks": self.total_fallbacks,
            "levels": dict(self.levels),
            "details": dict(self.details),
            "peak": self.peak,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], settings: MoodSettings | None = None) -> Mood:
        mood = cls(settings)
        if not data:
            return mood
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported Mood state version {data.get('version')!r}")
        mood.customer_turns = int(data["customer_turns"])
        mood.ema = None if data["ema"] is None else float(data["ema"])
        mood.scores.extend(float(x) for x in data["scores"])
        mood.recent.extend(str(x) for x in data["recent"])
        mood.total_repeats = int(data["total_repeats"])
        mood.consecutive_fallbacks = int(data["consecutive_fallbacks"])
        mood.total_fallbacks = int(data["total_fallbacks"])
        mood.levels.update({k: float(v) for k, v in data["levels"].items() if k in mood.levels})
        mood.details.update({str(k): str(v) for k, v in data["details"].items()})
        mood.peak = float(data.get("peak", 0.0))
        return mood


def carries_feeling(text: str, spans: Iterable[tuple[int, int]] = ()) -> bool:
    """False for a bare answer to a form ("10482", "jane@example.com", "yes").

    `spans` are NLU entity offsets to ignore as well. A model still scores such a
    message, but an order number or an e-mail address says nothing about how the
    customer feels, so a Mood should not count it.
    """
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return len(_WORD.findall(_DATA.sub(" ", text))) >= 2
