"""Writing-style variants of a message: no punctuation, light typos, ALL CAPS.

Training shows part of the training rows as variants, drawn anew each epoch (generated
at training time from the corpus with a fixed seed, never stored), so the model learns
that the way a customer types does not change how they feel. ``bench/sentiment.py
--robustness`` uses the same functions to count how often a prediction flips when only
the writing style changes.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence

STYLES: tuple[str, ...] = ("no_punctuation", "typos", "caps")
# Neighbouring keys on a QWERTY keyboard, for substitution typos.
_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_WORD = re.compile(r"[A-Za-z]{4,}")
_KEEP = re.compile(r"(?i)^(@\w+|https?://\S+|www\.\S+)")


def _neighbours(char: str) -> str:
    low = char.lower()
    for row in _KEYBOARD:
        i = row.find(low)
        if i >= 0:
            return row[max(0, i - 1) : i] + row[i + 1 : i + 2]
    return ""


def _strip(token: str) -> str:
    token = token.replace("'", "").replace("’", "")
    return "".join(" " if unicodedata.category(c).startswith("P") else c for c in token)


def no_punctuation(text: str) -> str:
    """Drop punctuation: apostrophes vanish ("don't" -> "dont"), the rest become spaces.

    Emoji and other symbols stay (they are not punctuation), and so do @handles and links,
    which someone who skips punctuation still pastes whole.
    """
    tokens = []
    for token in text.split():
        kept = _KEEP.match(token)
        head = kept[0] if kept else ""
        tokens.append(head + _strip(token[len(head) :]))
    return " ".join(" ".join(tokens).split())


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)  # first letter kept: people rarely miss it
    kind = rng.randrange(4)
    if kind == 0:  # swap two neighbouring letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # a letter missing
        return word[:i] + word[i + 1 :]
    if kind == 2:  # a letter doubled
        return word[:i] + word[i] + word[i:]
    near = _neighbours(word[i])  # a neighbouring key
    if not near:
        return word
    sub = rng.choice(near)
    return word[:i] + (sub.upper() if word[i].isupper() else sub) + word[i + 1 :]


def typos(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """Light typos: each word of 4+ letters gets one slip with probability ``rate``.

    Handles and links are left alone (they are normalised away before scoring anyway).
    """
    out = []
    for token in text.split(" "):
        if _KEEP.match(token):
            out.append(token)
            continue
        out.append(_WORD.sub(lambda m: _typo(m[0], rng) if rng.random() < rate else m[0], token))
    return " ".join(out)


def caps(text: str) -> str:
    return text.upper()


def perturb(text: str, style: str, rng: random.Random) -> str:
    """One style applied to one text."""
    if style == "no_punctuation":
        return no_punctuation(text)
    if style == "typos":
        return typos(text, rng)
    if style == "caps":
        return caps(text)
    raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")


# Chance that each style is part of a training variant (several may combine).
TRAIN_MIX: dict[str, float] = {"no_punctuation": 0.6, "typos": 0.6, "caps": 0.3}


def training_variant(text: str, rng: random.Random, mix: dict[str, float] | None = None) -> str:
    """A mix of styles (at least one, and a text that differs when possible)."""
    mix = mix or TRAIN_MIX
    for _ in range(4):
        chosen = [s for s in STYLES if rng.random() < mix.get(s, 0.0)] or [rng.choice(STYLES)]
        variant = text
        for style in chosen:
            variant = perturb(variant, style, rng)
        if variant != text:
            return variant
    return variant


def epoch_variants(texts: Sequence[str], share: float, seed: int) -> list[str]:
    """The texts with about ``share`` of them swapped for a variant; deterministic per seed."""
    rng = random.Random(seed)
    return [training_variant(t, rng) if rng.random() < share else t for t in texts]


def styled(texts: Sequence[str], style: str, seed: int) -> list[str]:
    """Every text in one style (for the robustness bench)."""
    rng = random.Random(seed)
    return [perturb(t, style, rng) for t in texts]
