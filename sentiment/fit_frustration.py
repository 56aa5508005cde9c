"""Fit the frustration model's weights on the User Satisfaction Simulation (USS) dialogues.

    python -m sentiment.fit_frustration [--data DIR] [--model M] [--folds 5] [--out PATH]
                                        [--dry-run]

Each USER turn of MWOZ.txt, ReDial.txt and CCPE.txt (read in place from
``../shared/datasets/user_satisfaction`` or $TANDEM_DATASETS; never copied) is rated 1-5
by annotators; a turn is *dissatisfied* when its majority rating is 1-2. Every dialogue is
replayed through :class:`sentiment.mood.Mood` exactly as the gateway feeds it (customer
messages with their sentiment score from the trained model, bot turns as events), and
the components' raw values at each USER turn are the features of a scikit-learn logistic
regression. Cross-validation groups turns by dialogue (GroupKFold), so a dialogue is never
both fitted and scored. The weights (coefficient, intercept, feature scaling) are written
as data to ``sentiment/data/frustration_weights.yaml`` with the command, date, data files
and cross-validated AUC.

USS has no fallbacks; a SYSTEM turn that says it could not help ("sorry", "there are no
...", "I don't have that information", "it does not offer ...", "not available") is fed as
a fallback, the closest thing the data has. The SYSTEM turn's text goes with it, so the
Mood can judge an off-topic reply; with the bundled sentence encoder installed
(:mod:`sentiment.meaning`) every turn is encoded once in batches (cached under var/cache
like the sentiment scores) and the replay looks the vectors up.

Components that are (almost) never active in USS (e.g. threats, profanity) cannot be
fitted there: they keep a documented prior weight (``PRIORS``), marked ``fitted: false``.
A fitted component whose coefficient comes out negative is refitted without it (weight 0):
each component is a frustration signal, so its contribution must never lower the index.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sentiment.mood import COMPONENTS, WEIGHTS_FILE, Mood

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "data" / WEIGHTS_FILE
CACHE = PROJECT_ROOT / "var" / "cache"
USS_FILES: tuple[str, ...] = ("MWOZ.txt", "ReDial.txt", "CCPE.txt")
MIN_CACHED_TEXTS = 1000  # fewer texts are encoded again each time, not cached
# A component is fitted only if it is clearly on (>= 0.5; levels fade turn by turn) on at
# least this many dissatisfied user turns (about 10+ events per coefficient, and USS
# rarely shows threats, swearing or shouting: those keep their prior).
MIN_SUPPORT = 30
# Log-odds per unit of raw value for components USS cannot fit: 5 x the hand weights the
# index used before fitting (its threshold 0.7 was a sum of weights; 5 x 0.7 = +3.5
# log-odds, about the distance from the USS base rate (6%) to p = 0.7).
PRIORS: dict[str, float] = {
    "message": 1.0, "negativity": 2.25, "trend": 1.0, "repetition": 1.5, "fallbacks": 1.75,
    "reasks": 1.5, "caps": 0.75, "punctuation": 0.5, "profanity": 1.25, "threat": 2.25,
    "waiting": 1.0, "impatience": 1.75, "correction": 1.0, "off_topic": 0.0,
    "bot_failed": 1.0, "sarcasm": 1.75, "negation": 0.5,
}  # fmt: skip
# A SYSTEM turn that admits it could not help: the USS stand-in for a bot fallback.
_BOT_FAILED = re.compile(
    r"\b(sorry|unfortunately|regretfully|i'?m afraid|apolog\w*|there (are|is) no|"
    r"no (results?|matches|match|availability|information)|nothing (matches|available)|"
    r"(couldn'?t|could not|can'?t|cannot|unable to) (find|book|locate|help)|"
    r"don'?t (understand|have (that|any|this))|not sure what you mean|no idea|"
    r"not available|unavailable|fully booked|(was|were|is) unsuccessful|"
    r"do(es)?n'?t (offer|have)|do(es)? not (offer|have)|no \w+ (match|matches|available|meet)|"
    r"none (of|that))\b",
    re.I,
)


def say(msg: str) -> None:
    print(msg, flush=True)


def datasets_dir() -> Path:
    return Path(os.environ.get("TANDEM_DATASETS") or PROJECT_ROOT.parent / "shared" / "datasets")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Turn:
    role: str  # USER or SYSTEM
    text: str
    ratings: tuple[int, ...]


def read_uss(path: Path) -> list[list[Turn]]:
    """Dialogues as lists of turns; the dialogue-level OVERALL row is dropped."""
    dialogues: list[list[Turn]] = []
    current: list[Turn] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                dialogues.append(current)
            current = []
            continue
        cols = line.split("\t")
        role, text = cols[0].strip(), cols[1].strip() if len(cols) > 1 else ""
        if text == "OVERALL":
            continue
        ratings = tuple(int(x) for x in re.findall(r"\d", cols[3])) if len(cols) > 3 else ()
        current.append(Turn(role, text, ratings))
    if current:
        dialogues.append(current)
    return dialogues


def dissatisfied(ratings: Sequence[int]) -> bool:
    """Majority rating <= 2 (ties broken toward the lower rating)."""
    counts = Counter(ratings)
    top = max(counts.values())
    return min(r for r, c in counts.items() if c == top) <= 2


def bot_event(text: str) -> str:
    return "fallback" if _BOT_FAILED.search(text) else "answer"


@dataclass
class Rows:
    """One row per rated USER turn."""

    features: list[list[float]]  # in COMPONENTS order
    labels: list[int]
    groups: list[str]  # "<file>#<dialogue>"
    files: list[str]
    sentiment: list[float]  # the turn's own sentiment score (for the sentiment-alone AUC)
    frustration: list[float]  # the index with the weights in force when replayed
    dialogues: int


def uss_files(data_dir: Path | None = None) -> list[Path]:
    base = (data_dir or datasets_dir() / "user_satisfaction").expanduser()
    return [base / f for f in USS_FILES if (base / f).is_file()]


def score_texts(texts: list[str], model: str | None, progress: bool = True) -> list[float]:
    """Sentiment scores (float32, batch-independent), cached under var/cache by model + text."""
    from sentiment.analyzer import Analyzer
    from sentiment.train import ensure_default_model

    path = model or os.environ.get("SENTIMENT_MODEL") or str(ensure_default_model())
    analyzer = Analyzer(path, quantize=False)
    digest = hashlib.sha256(("\n".join(texts)).encode()).hexdigest()[:12]
    # The canonical-form averaging (SENTIMENT_CANONICAL) changes the scores, not the model.
    form = "-canonical" if analyzer.canonical_form else ""
    cache = CACHE / f"uss-scores-{Path(path).name}{form}-{digest}.json"
    if cache.is_file():
        say(f"sentiment scores: cached ({cache})")
        return json.loads(cache.read_text())
    from tqdm.auto import tqdm

    analyzer.load()
    scores: list[float] = []
    with tqdm(total=len(texts), desc="scoring USS user turns", disable=not progress) as bar:
        for i in range(0, len(texts), 512):
            chunk = analyzer.score_batch(texts[i : i + 512])
            scores.extend(s.score for s in chunk)
            bar.update(len(chunk))
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(scores))
    return scores


def preload_meaning(texts: Sequence[str]) -> bool:
    """Encode every turn's text once, in batches (cached under var/cache), so that the
    Mood's meaning checks during the replay are look-ups. False without the encoder."""
    from sentiment.meaning import default_encoder
    from sentiment.mood import _normalise

    encoder = default_encoder()
    if encoder is None:
        say("sentence encoder: not available; repeats by word overlap, off_topic 0")
        return False
    import numpy as np

    norms = sorted({_normalise(t) for t in texts} - {""})
    digest = hashlib.sha256(("\n".join(norms)).encode()).hexdigest()[:12]
    cache = CACHE / f"uss-meaning-minilm-{digest}.npy"
    if cache.is_file():
        say(f"sentence vectors: cached ({cache})")
        vectors = np.load(cache).astype(np.float32)
    else:
        say(f"encoding {len(norms)} texts with the sentence encoder")
        # float16 as stored, so that a run from the cache gives the same figures.
        vectors = encoder.encode(norms, batch_size=128).astype(np.float16)
        if len(norms) >= MIN_CACHED_TEXTS:  # the USS files, not a test's few lines
            CACHE.mkdir(parents=True, exist_ok=True)
            np.save(cache, vectors)
        vectors = vectors.astype(np.float32)
    encoder.preload(dict(zip(norms, vectors, strict=True)))
    return True


def replay(
    files: Sequence[Path], scores: Sequence[float] | None = None, model: str | None = None
) -> Rows:
    """Every dialogue through Mood; features at each rated USER turn."""
    per_file = [(f, read_uss(f)) for f in files]
    texts = [t.text for _, ds in per_file for d in ds for t in d if t.role == "USER"]
    say(f"read {sum(len(ds) for _, ds in per_file)} dialogues, {len(texts)} user turns")
    if scores is None:
        scores = score_texts(texts, model)
    preload_meaning([t.text for _, ds in per_file for d in ds for t in d])
    rows = Rows([], [], [], [], [], [], 0)
    k = 0
    for path, dialogues in per_file:
        for n, dialogue in enumerate(dialogues):
            mood = Mood()
            rows.dialogues += 1
            for turn in dialogue:
                if turn.role != "USER":
                    mood.add_bot_event(bot_event(turn.text), turn.text)
                    continue
                score = scores[k]
                k += 1
                mood.add_customer_message(turn.text, score)
                if not turn.ratings:
                    continue
                feats = mood.features()
                rows.features.append([feats[c] for c in COMPONENTS])
                rows.labels.append(int(dissatisfied(turn.ratings)))
                rows.groups.append(f"{path.name}#{n}")
                rows.files.append(path.name)
                rows.sentiment.append(score)
                rows.frustration.append(mood.frustration)
    return rows


# --------------------------------------------------------------------------- fitting


@dataclass
class Fit:
    intercept: float
    coef: dict[str, float]
    scale: dict[str, float]
    fitted: dict[str, bool]
    notes: dict[str, str]

    def logits(self, features: Any) -> Any:
        import numpy as np

        x = np.asarray(features, dtype=float)
        w = np.array([self.coef[c] / self.scale[c] for c in COMPONENTS])
        return self.intercept + x @ w


def fit(features: Any, labels: Sequence[int], c: float = 1.0) -> Fit:
    """Logistic regression on the supported components, non-negative by refitting."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    support = (np.abs(x[y == 1]) >= 0.5).sum(axis=0)
    notes: dict[str, str] = {}
    active = []
    for i, name in enumerate(COMPONENTS):
        if support[i] >= MIN_SUPPORT:
            active.append(i)
        else:
            notes[name] = f"prior: on in {int(support[i])} dissatisfied turns (< {MIN_SUPPORT})"
    std = x.std(axis=0)
    scale = {name: float(std[i]) if i in active else 1.0 for i, name in enumerate(COMPONENTS)}
    coef: dict[str, float] = {}
    intercept = 0.0
    while True:
        cols = list(active)
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(x[:, cols] / std[cols], y)
        fitted = dict(zip((COMPONENTS[i] for i in cols), model.coef_[0], strict=True))
        negative = [i for i in cols if fitted[COMPONENTS[i]] < 0]
        if not negative:
            break
        for i in negative:
            active.remove(i)
            notes[COMPONENTS[i]] = f"fitted {fitted[COMPONENTS[i]]:+.3f} < 0: weight 0"
    intercept = float(model.intercept_[0])
    for i, name in enumerate(COMPONENTS):
        if i in active:
            coef[name] = float(fitted[name])
        elif name in notes and notes[name].startswith("prior"):
            coef[name] = PRIORS[name]
        else:
            coef[name] = 0.0
    is_fitted = {name: i in active for i, name in enumerate(COMPONENTS)}
    return Fit(intercept, coef, scale, is_fitted, notes)


def cross_validate(rows: Rows, folds: int = 5, c: float = 1.0) -> list[float]:
    """Out-of-fold probabilities, folds grouped by dialogue."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    x = np.asarray(rows.features, dtype=float)
    y = np.asarray(rows.labels)
    out = np.zeros(len(y))
    for k, (train, test) in enumerate(GroupKFold(n_splits=folds).split(x, y, rows.groups), 1):
        model = fit(x[train], y[train], c)
        out[test] = 1 / (1 + np.exp(-model.logits(x[test])))
        say(f"  fold {k}/{folds}: fitted on {len(train)} turns, scored {len(test)}")
    return out.tolist()


def auc_table(rows: Rows, predicted: Sequence[float]) -> dict[str, dict[str, float]]:
    """AUC of the model and of sentiment alone (-score), per file and overall."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, dict[str, float]] = {}
    for name in [*sorted(set(rows.files)), "overall"]:
        idx = [i for i, f in enumerate(rows.files) if name in ("overall", f)]
        y = [rows.labels[i] for i in idx]
        out[name] = {
            "turns": len(idx),
            "dissatisfied": sum(y),
            "model": float(roc_auc_score(y, [predicted[i] for i in idx])),
            "sentiment": float(roc_auc_score(y, [-rows.sentiment[i] for i in idx])),
        }
    return out


def thresholds(labels: Sequence[int], predicted: Sequence[float]) -> dict[str, Any]:
    """Precision/recall at fixed thresholds and the lowest threshold with precision >= 0.9."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    y, p = np.asarray(labels), np.asarray(predicted)
    at = {}
    for t in (0.3, 0.5, 0.7):
        flagged = p >= t
        tp = int((flagged & (y == 1)).sum())
        at[f"{t:.1f}"] = {
            "flagged": int(flagged.sum()),
            "precision": tp / flagged.sum() if flagged.sum() else None,
            "recall": tp / max(1, int(y.sum())),
        }
    precision, recall, cuts = precision_recall_curve(y, p)
    high = [(float(cuts[i]), float(precision[i]), float(recall[i])) for i in range(len(cuts))
            if precision[i] >= 0.9 and recall[i] > 0]  # fmt: skip
    best = min(high) if high else None
    return {
        "at": at,
        "precision_0_9": None
        if best is None
        else {"threshold": best[0], "precision": best[1], "recall": best[2]},
        "max_precision": float(precision[:-1].max()) if len(precision) > 1 else None,
    }


# --------------------------------------------------------------------------- output


def weights_yaml(
    final: Fit, command: str, files: Sequence[Path], rows: Rows, table: dict, model: str
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    overall = table["overall"]
    head = [
        "# Frustration model weights for sentiment.mood (logistic regression).",
        f"# Produced by: {command}",
        f"# Date: {now}",
        f"# Data (read in place, not copied): {', '.join(str(f) for f in files)}",
        f"# Sentiment model used for the scores: {model}",
        f"# {rows.dialogues} dialogues, {len(rows.labels)} rated user turns, "
        f"{sum(rows.labels)} dissatisfied (majority rating 1-2).",
        f"# Cross-validated AUC (GroupKFold by dialogue): {overall['model']:.3f} "
        f"(sentiment alone {overall['sentiment']:.3f}).",
        "# p = sigmoid(intercept + sum(coef * raw / scale)); raw values in [0, 1].",
        "# fitted: false = USS cannot fit it; the prior of sentiment/fit_frustration.py.",
        "",
    ]
    body = {
        "intercept": round(final.intercept, 6),
        "components": {
            name: {
                "coef": round(final.coef[name], 6),
                "scale": round(final.scale[name], 6),
                "fitted": final.fitted[name],
                **({"note": final.notes[name]} if name in final.notes else {}),
            }
            for name in COMPONENTS
        },
        "metadata": {
            "command": command,
            "date": now,
            "data_files": [f.name for f in files],
            "sentiment_model": model,
            "dialogues": rows.dialogues,
            "turns": len(rows.labels),
            "dissatisfied_turns": sum(rows.labels),
            "cv": "GroupKFold by dialogue",
            "cv_auc": {k: round(v["model"], 4) for k, v in table.items()},
            "sentiment_alone_auc": {k: round(v["sentiment"], 4) for k, v in table.items()},
        },
    }
    return "\n".join(head) + yaml.safe_dump(body, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sentiment.fit_frustration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=None, help="folder with the USS files")
    parser.add_argument("--model", default=None, help="sentiment model (default: trained)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--dry-run", action="store_true", help="report, do not write")
    args = parser.parse_args(argv)
    command = (
        "python -m sentiment.fit_frustration"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )

    files = uss_files(args.data)
    if not files:
        print(f"error: no USS files ({', '.join(USS_FILES)}) found", file=sys.stderr)
        return 2
    started = time.perf_counter()
    from sentiment.train import ensure_default_model

    model = args.model or os.environ.get("SENTIMENT_MODEL") or str(ensure_default_model())
    rows = replay(files, model=model)
    say(f"{len(rows.labels)} rated turns, {sum(rows.labels)} dissatisfied; cross-validating")
    oof = cross_validate(rows, args.folds, args.c)
    table = auc_table(rows, oof)
    for name, t in table.items():
        say(
            f"  {name:10s} AUC {t['model']:.3f} (sentiment alone {t['sentiment']:.3f}) "
            f"on {t['turns']} turns, {t['dissatisfied']} dissatisfied"
        )
    final = fit(rows.features, rows.labels, args.c)
    say(f"final fit on all turns: intercept {final.intercept:+.3f}")
    for name in COMPONENTS:
        kind = "fitted" if final.fitted[name] else final.notes.get(name, "")
        say(f"  {name:12s} coef {final.coef[name]:+.3f} scale {final.scale[name]:.3f}  {kind}")
    th = thresholds(rows.labels, oof)
    say(f"out-of-fold thresholds: {json.dumps(th)}")
    if not args.dry_run:
        args.out.write_text(
            weights_yaml(final, command, files, rows, table, Path(model).name), encoding="utf-8"
        )
        say(f"wrote {args.out}")
    say(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
