"""CSV exports of the sentiment log: one row per conversation, or one per message.

Rows are produced lazily so the web layer can stream them. Cells that a spreadsheet
would run as a formula (= + - @, and tab/CR that some programs strip first) get a
leading apostrophe: a customer's "=HYPERLINK(...)" stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from tandem.reports.log import BATCH, Found, candidate_ids, load_matching
from tandem.reports.service import LogFilters, Masker, known_names, staff_names, summarize

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CONVERSATION_COLUMNS = [
    "conversation_id",
    "created_at",
    "state",
    "outcome",
    "customer",
    "tier",
    "lifetime_value",
    "staff",
    "reasons",
    "reason_texts",
    "avg_sentiment",
    "min_sentiment",
    "sentiment",
    "frustration",
    "csat",
    "message_count",
]
MESSAGE_COLUMNS = [
    "conversation_id",
    "message_id",
    "created_at",
    "sender",
    "text",
    "intent",
    "intent_confidence",
    "sentiment_score",
    "negative",
    "neutral",
    "positive",
]


def safe_cell(value: Any) -> str:
    """The cell's text, defused against CSV/formula injection."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)  # our own numbers: a negative score is not a formula
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _csv_lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header)
    yield flush()
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        yield flush()


SessionFactory = Callable[[], AbstractContextManager[Session]]
_PLAIN = Masker(False)


def _conversation_rows(session: Session, found: list[Found]) -> list[tuple[list[Any], list[str]]]:
    """Rows with the customer's real name in column 4, and the names to mask with."""
    names = staff_names(session)
    rows: list[tuple[list[Any], list[str]]] = []
    for f in found:
        s = summarize(f.conversation, f.customer, names, _PLAIN)
        row = [
            s["id"],
            s["created_at"],
            s["state"],
            s["outcome"],
            s["customer"]["label"],
            s["customer"]["tier"],
            s["customer"]["lifetime_value"],
            s["staff"]["name"] if s["staff"] else None,
            "; ".join(s["reasons"]),
            "; ".join(s["reason_texts"]),
            s["avg_sentiment"],
            s["min_sentiment"],
            s["sentiment"],
            s["mood"]["frustration"] if s["mood"] else None,
            s["csat"],
            s["message_count"],
        ]
        rows.append((row, known_names(f.conversation, f.customer) if f.customer else []))
    return rows


def _message_rows(session: Session, found: list[Found]) -> list[tuple[list[Any], list[str]]]:
    rows: list[tuple[list[Any], list[str]]] = []
    for f in found:
        names = known_names(f.conversation, f.customer)
        for m in f.conversation.messages:
            row = [
                m.conversation_id,
                m.id,
                m.created_at.isoformat(),
                m.sender,
                m.text,
                m.intent,
                m.intent_confidence,
                m.sentiment_score,
                m.sentiment_negative,
                m.sentiment_neutral,
                m.sentiment_positive,
            ]
            rows.append((row, names))
    return rows


def stream_csv(
    open_session: SessionFactory, kind: str, filters: LogFilters, masker: Masker
) -> Iterator[str]:
    """The CSV text of an export, in chunks.

    One short session per batch of conversations, and the (slow) masking happens outside
    it, so a long export never holds the database (SQLite's write lock) for long.
    """
    conversations = kind == "conversations"
    header = CONVERSATION_COLUMNS if conversations else MESSAGE_COLUMNS
    with open_session() as session:
        ids = candidate_ids(session, filters)

    def rows() -> Iterator[list[Any]]:
        for start in range(0, len(ids), BATCH):
            with open_session() as session:
                found = load_matching(session, ids[start : start + BATCH], filters)
                batch = (_conversation_rows if conversations else _message_rows)(session, found)
            for row, names in batch:
                # Column 4 is the customer label (conversations) or the text (messages).
                if conversations:
                    if names:
                        row[4] = masker.text(row[4], names)
                else:
                    row[4] = masker.text(row[4], names)
                yield row

    yield from _csv_lines(header, rows())
