"""Evaluate the sentiment model on any labelled file, beside a VADER baseline.

    python -m sentiment.evaluate PATH [--text-col C] [--label-col C] [--map 'pos=positive,...']
                                      [--sep ','] [--split test|val] [--model M]

PATH is a CSV/TSV with a text and a label column, or a TweetEval-style folder
(``<split>_text.txt`` + ``<split>_labels.txt`` + ``mapping.txt``). Labels must end up as
negative / neutral / positive: common spellings (neg, Positive, NEUTRAL...) are understood,
anything else needs ``--map``. Exit code 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
TEXT_COLUMNS = ("text", "tweet", "sentence", "message", "content", "review")
LABEL_COLUMNS = ("label", "sentiment", "airline_sentiment", "labels", "polarity", "class")
_SYNONYMS = {
    "negative": "negative", "neg": "negative", "n": "negative",
    "neutral": "neutral", "neu": "neutral", "none": "neutral",
    "positive": "positive", "pos": "positive", "p": "positive",
}  # fmt: skip


class InputError(ValueError):
    """Bad evaluation input (missing file or column, unknown labels)."""


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: list[int]


def parse_mapping(spec: str | None) -> dict[str, str]:
    """'pos=positive,0=negative' -> {'pos': 'positive', '0': 'negative'}."""
    mapping: dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise InputError(f"--map entry {item!r} is not of the form raw=label")
        raw, label = (x.strip() for x in item.split("=", 1))
        if label.lower() not in LABELS:
            raise InputError(f"--map target {label!r} must be one of {', '.join(LABELS)}")
        mapping[raw.lower()] = label.lower()
    return mapping


def _to_ids(raw_labels: Sequence[str], mapping: dict[str, str], source: str) -> list[int]:
    ids: list[int] = []
    unknown: set[str] = set()
    for raw in raw_labels:
        key = raw.strip().lower()
        label = mapping.get(key) or _SYNONYMS.get(key)
        if label is None:
            unknown.add(raw.strip())
            continue
        ids.append(LABELS.index(label))
    if unknown:
        shown = ", ".join(sorted(unknown)[:10])
        raise InputError(
            f"{source}: unknown label(s) {shown}; map them with "
            "--map 'raw=negative|neutral|positive,...'"
        )
    return ids


def _pick(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, source: str
) -> str:
    if wanted:
        if wanted not in columns:
            raise InputError(f"{source}: no {what} column {wanted!r}; columns are {list(columns)}")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise InputError(
        f"{source}: cannot tell which column holds the {what}; pass --{what}-col "
        f"(columns are {list(columns)})"
    )


def load_tweeteval(
    folder: Path, split: str = "test", mapping: dict[str, str] | None = None
) -> Dataset:
    text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    for f in (text_file, label_file):
        if not f.is_file():
            raise InputError(f"{folder}: missing {f.name} (TweetEval layout, --split {split})")
    names: dict[str, str] = {}
    if (folder / "mapping.txt").is_file():
        for line in (folder / "mapping.txt").read_text(encoding="utf-8").splitlines():
            if line.strip():
                idx, name = line.split("\t", 1)
                names[idx.strip()] = name.strip()
    texts = text_file.read_text(encoding="utf-8").splitlines()
    raw = [names.get(x.strip(), x.strip()) for x in label_file.read_text().splitlines()]
    if len(texts) != len(raw):
        raise InputError(f"{folder}: {len(texts)} texts but {len(raw)} labels in split {split}")
    return Dataset(f"{folder.name} ({split})", texts, _to_ids(raw, mapping or {}, str(folder)))


def load_table(
    path: Path,
    text_col: str | None = None,
    label_col: str | None = None,
    mapping: dict[str, str] | None = None,
    sep: str | None = None,
) -> Dataset:
    if sep is None:
        sep = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
    sep = sep.encode().decode("unicode_escape")  # lets "--sep '\t'" work from a shell
    csv.field_size_limit(10_000_000)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=sep)
        columns = list(reader.fieldnames or [])
        if not columns:
            raise InputError(f"{path}: empty file or no header row")
        tcol = _pick(columns, text_col, TEXT_COLUMNS, "text", str(path))
        lcol = _pick(columns, label_col, LABEL_COLUMNS, "label", str(path))
        rows = [(r[tcol] or "", r[lcol] or "") for r in reader]
    rows = [(t, lab) for t, lab in rows if t.strip()]
    if not rows:
        raise InputError(f"{path}: no rows with text")
    ids = _to_ids([lab for _, lab in rows], mapping or {}, str(path))
    return Dataset(path.name, [t for t, _ in rows], ids)


def load_dataset(
    path: str | Path,
    text_col: str | None = None,
    label_col: str | None = None,
    mapping: dict[str, str] | None = None,
    sep: str | None = None,
    split: str = "test",
) -> Dataset:
    path = Path(path)
    if path.is_dir():
        return load_tweeteval(path, split, mapping)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    return load_table(path, text_col, label_col, mapping, sep)


# --------------------------------------------------------------------------- scoring


def model_predictions(
    analyzer: Any, texts: Sequence[str], progress: bool = True, desc: str = "scoring"
) -> list[int]:
    from tqdm.auto import tqdm

    preds: list[int] = []
    step = 1024  # the analyzer batches (and length-sorts) internally; this paces the bar
    with tqdm(total=len(texts), desc=desc, unit="msg", disable=not progress) as bar:
        for i in range(0, len(texts), step):
            chunk = analyzer.score_batch(texts[i : i + step])
            preds.extend(LABELS.index(s.label) for s in chunk)
            bar.update(len(chunk))
    return preds


def vader_predictions(texts: Sequence[str]) -> list[int]:
    """VADER's usual rule: compound >= 0.05 positive, <= -0.05 negative, else neutral."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        c = vader.polarity_scores(text)["compound"]
        out.append(2 if c >= 0.05 else 0 if c <= -0.05 else 1)
    return out


def textblob_predictions(texts: Sequence[str], threshold: float = 0.05) -> list[int]:
    from textblob import TextBlob

    out = []
    for text in texts:
        p = TextBlob(text).sentiment.polarity
        out.append(2 if p >= threshold else 0 if p <= -threshold else 1)
    return out


def metrics(gold: Sequence[int], pred: Sequence[int]) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    p, r, f, support = precision_recall_fscore_support(
        gold, pred, labels=[0, 1, 2], zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0)),
        "per_class": {
            LABELS[i]: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i in range(3)
        },
        "confusion": confusion_matrix(gold, pred, labels=[0, 1, 2]).tolist(),
    }


def render(name: str, results: dict[str, dict[str, Any]], n: int) -> None:
    """Rich tables: summary, per-class and confusion matrices, one column per system."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    systems = list(results)
    summary = Table(title=f"{name}: {n} messages")
    summary.add_column("metric")
    for s in systems:
        summary.add_column(s, justify="right")
    for key, title in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        summary.add_row(title, *(f"{results[s][key]:.3f}" for s in systems))
    console.print(summary)

    per_class = Table(title="per class: precision / recall / F1")
    per_class.add_column("class")
    per_class.add_column("support", justify="right")
    for s in systems:
        per_class.add_column(s, justify="right")
    for label in LABELS:
        cells = [
            "{precision:.3f} / {recall:.3f} / {f1:.3f}".format(**results[s]["per_class"][label])
            for s in systems
        ]
        per_class.add_row(label, str(results[systems[0]]["per_class"][label]["support"]), *cells)
    console.print(per_class)

    for s in systems:
        table = Table(title=f"confusion matrix, {s} (rows gold, columns predicted)")
        table.add_column("gold \\ pred")
        for label in LABELS:
            table.add_column(label, justify="right")
        for label, row in zip(LABELS, results[s]["confusion"], strict=True):
            table.add_row(label, *map(str, row))
        console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sentiment.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="CSV/TSV file or TweetEval-style folder")
    parser.add_argument("--text-col", default=None)
    parser.add_argument("--label-col", default=None)
    parser.add_argument(
        "--map",
        dest="mapping",
        default=None,
        help="raw=label pairs, e.g. 'pos=positive,0=negative'",
    )
    parser.add_argument("--sep", default=None, help="field separator (default by extension)")
    parser.add_argument(
        "--split", default="test", choices=["test", "val"], help="split of a TweetEval-style folder"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model folder or id (default: SENTIMENT_MODEL or the trained default)",
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N rows only")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        data = load_dataset(
            args.path,
            args.text_col,
            args.label_col,
            parse_mapping(args.mapping),
            args.sep,
            args.split,
        )
    except (InputError, UnicodeDecodeError, csv.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    texts, gold = data.texts[: args.limit], data.labels[: args.limit]

    from sentiment.analyzer import Analyzer, SentimentModelError

    analyzer = Analyzer(args.model)
    try:
        analyzer.load()
    except SentimentModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    preds = model_predictions(analyzer, texts, progress=not args.no_progress)
    results = {
        "model": metrics(gold, preds),
        "VADER": metrics(gold, vader_predictions(texts)),
    }
    render(f"{data.name} [model: {analyzer.model_id}]", results, len(texts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
