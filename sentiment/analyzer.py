"""`Analyzer`: one small, thread-safe API over a transformers sequence-classification model.

Settings (environment variables, read when the Analyzer is created):

- ``SENTIMENT_MODEL``      local folder or hub id; default: the project's trained model
                           (``python -m sentiment.train``).
- ``SENTIMENT_ALLOW_HUB``  ``1`` lets transformers download a hub model; otherwise Tandem
                           stays offline (HF_HUB_OFFLINE=1, local_files_only=True).
- ``SENTIMENT_THREADS``    torch intra-op threads (default ``min(2, cpu_count)``).
- ``SENTIMENT_QUANTIZE``   ``1`` (default): dynamic int8 quantisation of the Linear layers
                           after loading, several times faster on CPU at the same accuracy.
                           Its activation scale is per batch, so a message scored inside a
                           batch can differ by a few hundredths from scoring it alone; ``0``
                           keeps float32 (batch-independent, slower).
- ``SENTIMENT_MAX_LENGTH`` tokens per message (default 128).
- ``SENTIMENT_CANONICAL``  ``1`` (default): test-time augmentation. Each message is scored
                           as written and in a canonical form (lower case, punctuation
                           dropped except emoticons, obvious one-letter typos mended; see
                           :func:`canonical`), and the two probability vectors are
                           averaged, so how a customer types moves the verdict less.
                           ``0`` scores the text as written only.
- ``SENTIMENT_MEND_TYPOS`` ``1`` (default): the canonical form also mends obvious one-slip
                           typos of unknown words (:class:`Speller`); ``0`` does not.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sentiment  # noqa: F401  (sets the offline defaults before transformers loads)

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
_TRUE = {"1", "true", "yes", "on"}

HOW_TO_FIX = (
    "Set SENTIMENT_MODEL to a local model folder (or to a hub id together with "
    "SENTIMENT_ALLOW_HUB=1), or train the default model with `python -m sentiment.train`."
)


class SentimentModelError(RuntimeError):
    """The sentiment model is missing or cannot be loaded."""


@dataclass(frozen=True, slots=True)
class SentimentScores:
    """Class probabilities for one message; ``score`` = p(positive) - p(negative) in [-1, 1]."""

    negative: float
    neutral: float
    positive: float

    @property
    def score(self) -> float:
        return self.positive - self.negative

    @property
    def label(self) -> str:
        probs = (self.negative, self.neutral, self.positive)
        return LABELS[probs.index(max(probs))]

    def to_dict(self) -> dict[str, float | str]:
        return {
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "score": self.score,
            "label": self.label,
        }


# Twitter-style handles and links carry no sentiment; normalise them the way public
# sentiment models (e.g. cardiffnlp) do so that a handle never dominates a short text.
_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"(?i)https?://\S+|www\.\S+")  # "HTTP://..." in a shouted message too


def preprocess(text: str) -> str:
    return _URL.sub("http", _MENTION.sub("@user", text)).strip()


# --------------------------------------------------------------------------- canonical form

# Emoticons carry sentiment although they are made of punctuation: the canonical form keeps
# them (as their own tokens). Emoji are symbols, not punctuation, and stay anyway.
_EMOTICON = re.compile(
    r"[:;=][-'^]?[()\[\]dDpP/\\|]+(?![A-Za-z0-9])"  # :) :-( ;P :/ :D
    r"|(?<![A-Za-z0-9])[()\[\]]+[-'^]?[:;=]"  # (: ):
    r"|<3+"
)


def _strip_punctuation(token: str) -> str:
    token = token.replace("'", "").replace("’", "")
    return "".join(" " if unicodedata.category(c).startswith("P") else c for c in token)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ALPHA_WORD = re.compile(r"[a-z]+")
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly")


def _edits1(word: str) -> set[str]:
    """Every string one slip away: a letter dropped, two swapped, one replaced or added."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


class Speller:
    """Mends obvious one-slip typos of words nobody knows.

    A lower-case word of 4+ letters is left alone when the tokenizer knows it whole or it
    is an English word (TextBlob's word lists, contractions without their apostrophe,
    inflections of a known word). Otherwise it becomes the tokenizer's most common whole
    word one slip away (WordPiece vocabularies list words roughly by frequency: lowest id
    wins), if there is one: "servcie" -> "service", "delivry" -> "delivery".
    """

    def __init__(self, vocab: dict[str, int], known: frozenset[str] = frozenset()) -> None:
        self.vocab = {w: i for w, i in vocab.items() if w.isalpha() and w.isascii()}
        self.known = known

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> Speller:
        return cls(dict(tokenizer.get_vocab()), _english_words())

    def _is_known(self, word: str) -> bool:
        if word in self.vocab or word in self.known:
            return True
        return any(
            word.endswith(s) and (word[: -len(s)] in self.vocab or word[: -len(s)] in self.known)
            for s in _SUFFIXES
            if len(word) - len(s) >= 3
        )

    def mend(self, word: str) -> str:
        if len(word) < 4 or self._is_known(word):
            return word
        # The first letter is kept: people rarely miss it, and a new first letter is
        # more often another word ("vegan" -> "began") than a mended one.
        near = [w for w in _edits1(word) if len(w) >= 4 and w[0] == word[0] and w in self.vocab]
        return min(near, key=self.vocab.__getitem__) if near else word

    def __call__(self, text: str) -> str:
        return _ALPHA_WORD.sub(lambda m: self.mend(m[0]), text)


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Lower-case English words from TextBlob's tagger lexicon and spelling list (both
    ship with textblob, a Tandem dependency), plus contractions without apostrophes."""
    from importlib.util import find_spec

    words: set[str] = set()
    spec = find_spec("textblob")  # located, not imported (that would load nltk)
    for location in (spec.submodule_search_locations or []) if spec else []:
        for name in ("en-lexicon.txt", "en-spelling.txt"):
            path = Path(location) / "en" / name
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                head = line.split(" ", 1)[0].lower()
                if head.isalpha():
                    words.add(head)
    for stem in ("do", "does", "did", "is", "are", "was", "were", "has", "have", "had",
                 "could", "would", "should", "ca", "wo", "ai", "need", "must"):  # fmt: skip
        words.add(stem + "nt")
    words |= {"im", "ive", "youre", "youve", "theyre", "theyve", "weve", "thats", "whats",
              "theres", "wheres", "hes", "shes", "itll", "youll", "theyll", "yall"}  # fmt: skip
    return frozenset(words)


def canonical(text: str, speller: Speller | None = None) -> str:
    """The canonical form of an (already preprocessed) message: lower case, punctuation
    dropped (apostrophes vanish, the rest become spaces) except in emoticons, @user and
    links; with a ``speller``, obvious typos mended. "I DON'T understand, where is my
    refund?!" -> "i dont understand where is my refund"."""
    tokens: list[str] = []
    for token in text.split():
        for kept in ("@user", "http"):  # what preprocess left of handles and links
            if token.startswith(kept):
                tokens.append(kept)
                token = token[len(kept) :]
        # Emoticons are kept whole, also when glued to a word ("thanks:)").
        parts = _EMOTICON.split(token)
        emoticons = _EMOTICON.findall(token)
        for i, part in enumerate(parts):
            tokens.append(_strip_punctuation(part.lower()))
            if i < len(emoticons):
                tokens.append(emoticons[i])
    words = " ".join(tokens).split()
    if speller is not None:
        words = [w if w in {"@user", "http"} else speller(w) for w in words]
    return " ".join(words)


# --------------------------------------------------------------------------- label mapping

_NAMED = {
    "negative": 0, "neg": 0, "bad": 0, "1 star": 0, "2 stars": 0, "very negative": 0,
    "neutral": 1, "neu": 1, "neut": 1, "mixed": 1, "3 stars": 1,
    "positive": 2, "pos": 2, "good": 2, "4 stars": 2, "5 stars": 2, "very positive": 2,
}  # fmt: skip


def label_mapping(id2label: dict[int, str]) -> list[int]:
    """Map each model output index to 0/1/2 (negative/neutral/positive).

    Understands named labels in any case ("NEG", "Negative", "5 stars") and the
    anonymous LABEL_0..LABEL_2 of three-class models, which by convention are ordered
    negative, neutral, positive (as in cardiffnlp's models).
    """
    n = len(id2label)
    names = {int(k): str(v).strip().lower().replace("_", " ") for k, v in id2label.items()}
    mapping: list[int] = []
    for i in range(n):
        name = names.get(i, "")
        if name in _NAMED:
            mapping.append(_NAMED[name])
        elif re.fullmatch(r"label \d+", name) and n == 3:
            mapping.append(int(name.split()[1]))
        else:
            raise SentimentModelError(
                f"Cannot map the model's label {id2label.get(i)!r} (id {i}) to "
                f"negative/neutral/positive; labels are {id2label}. {HOW_TO_FIX}"
            )
    if (n == 2 and sorted(mapping) != [0, 2]) or (n >= 3 and set(mapping) != {0, 1, 2}):
        raise SentimentModelError(
            f"The model's labels {id2label} do not cover negative/neutral/positive. {HOW_TO_FIX}"
        )
    return mapping


# --------------------------------------------------------------------------- analyzer


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


class Analyzer:
    """Sentiment of customer messages. Loads lazily; safe to share between threads.

    >>> analyzer = Analyzer()               # SENTIMENT_MODEL or the trained default
    >>> analyzer.score("This is ridiculous").score   # doctest: +SKIP
    -0.93
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        num_threads: int | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        quantize: bool | None = None,
        allow_hub: bool | None = None,
        canonical_form: bool | None = None,
        mend_typos: bool | None = None,
    ) -> None:
        self._model_setting = str(model) if model is not None else os.environ.get("SENTIMENT_MODEL")
        self.num_threads = num_threads or int(
            os.environ.get("SENTIMENT_THREADS") or min(2, os.cpu_count() or 1)
        )
        self.max_length = max_length or int(os.environ.get("SENTIMENT_MAX_LENGTH") or 128)
        self.batch_size = batch_size
        if quantize is None:
            quantize = os.environ.get("SENTIMENT_QUANTIZE", "1").strip().lower() in _TRUE
        self.quantize = quantize
        self.allow_hub = _env_flag("SENTIMENT_ALLOW_HUB") if allow_hub is None else allow_hub
        if canonical_form is None:
            canonical_form = os.environ.get("SENTIMENT_CANONICAL", "1").strip().lower() in _TRUE
        self.canonical_form = canonical_form
        if mend_typos is None:
            mend_typos = os.environ.get("SENTIMENT_MEND_TYPOS", "1").strip().lower() in _TRUE
        self.mend_typos = mend_typos
        self._speller: Speller | None = None
        # One lock around tokenisation + inference: HF fast tokenizers are not safe to
        # call concurrently, and on a 2-core box parallel forwards would only contend.
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._mapping: list[int] = []
        self.model_id: str | None = None

    # ---------------------------------------------------------------- loading

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _resolve(self) -> str:
        if self._model_setting:
            setting = self._model_setting
            if Path(setting).expanduser().exists():
                return str(Path(setting).expanduser().resolve())
            # A hub id is "owner/name"; anything else that is absent is a missing folder.
            if setting.startswith((".", "/", "~")) or setting.count("/") > 1:
                raise SentimentModelError(
                    f"Sentiment model folder {setting!r} (SENTIMENT_MODEL) does not exist. "
                    f"{HOW_TO_FIX}"
                )
            return setting  # hub id: offline, only the local Hugging Face cache is used
        from sentiment.train import CorpusError, default_model_path, is_trained

        try:
            path = default_model_path()
        except CorpusError as exc:
            raise SentimentModelError(f"No default sentiment model: {exc}. {HOW_TO_FIX}") from None
        if not is_trained(path):
            raise SentimentModelError(
                f"The default sentiment model has not been trained yet ({path}). {HOW_TO_FIX}"
            )
        return str(path)

    def load(self) -> Analyzer:
        """Load the model now (otherwise the first call to score does it)."""
        with self._lock:
            self._load_locked()
        return self

    def _load_locked(self) -> None:
        if self._model is not None:
            return
        source = self._resolve()
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        torch.set_num_threads(max(1, self.num_threads))
        offline = not self.allow_hub
        # Quiet load: no "Loading weights" bars or notices in the gateway's logs.
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=offline
            )
        except Exception as exc:  # OSError, ValueError, safetensors errors, ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if offline and not Path(source).exists():
                reason += " (hub access is off: only the local Hugging Face cache was searched)"
            raise SentimentModelError(
                f"Could not load the sentiment model from {source!r}: {reason}. {HOW_TO_FIX}"
            ) from None
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        mapping = label_mapping(dict(model.config.id2label))
        model.eval()
        if self.quantize:
            # int8 Linear layers: on this shared 2-core CPU about 10x faster than float32
            # with the same macro-F1 (bench/RESULTS.md).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao deprecation notices
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8
                )
        if self.canonical_form and self.mend_typos:
            self._speller = Speller.for_tokenizer(tokenizer)
        self._tokenizer, self._model, self._mapping = tokenizer, model, mapping
        self.model_id = source

    # ---------------------------------------------------------------- scoring

    def score(self, text: str) -> SentimentScores:
        """Sentiment of one message."""
        return self.score_batch([text])[0]

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScores]:
        """Sentiment of several messages, in order (internally in chunks of batch_size)."""
        if isinstance(texts, str):
            raise TypeError("score_batch expects a sequence of strings; use score() for one")
        if not texts:
            return []

        cleaned = [preprocess(str(t)) or "." for t in texts]
        # Test-time augmentation: the canonical form too, where it differs (the tokenizer
        # lower-cases anyway); the two probability vectors are averaged below.
        inputs = list(cleaned)
        pairs: list[int | None] = [None] * len(cleaned)
        if self.canonical_form:
            if self.mend_typos and self._speller is None:
                self.load()  # the speller needs the tokenizer's vocabulary
            for i, text in enumerate(cleaned):
                form = canonical(text, self._speller)
                if form and form != text.lower():
                    pairs[i] = len(inputs)
                    inputs.append(form)
        probs = self._probabilities(inputs)
        results = []
        for i, row in enumerate(probs[: len(cleaned)]):
            j = pairs[i]
            if j is not None:
                row = [(a + b) / 2 for a, b in zip(row, probs[j], strict=True)]
            results.append(SentimentScores(*row))
        return results

    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        """negative/neutral/positive probabilities of preprocessed texts, in order."""
        import torch

        # Long inputs are scored shortest-first so each chunk pads to a similar length,
        # then put back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        if len(texts) <= self.batch_size:
            order = list(range(len(texts)))
        results: list[list[float]] = [[]] * len(texts)
        with self._lock:
            self._load_locked()
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                chunk = [texts[i] for i in idx]
                with torch.inference_mode():
                    enc = self._tokenizer(
                        chunk,
                        padding=True,  # dynamic: pad to the longest text of this chunk
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    )
                    probs = torch.softmax(self._model(**enc).logits.float(), dim=-1)
                    folded = torch.zeros(probs.shape[0], 3)
                    folded.index_add_(1, torch.tensor(self._mapping), probs)
                for i, row in zip(idx, folded.tolist(), strict=True):
                    results[i] = row
        return results


@lru_cache(maxsize=1)
def get_analyzer() -> Analyzer:
    """Process-wide shared Analyzer built from the environment settings."""
    return Analyzer()
