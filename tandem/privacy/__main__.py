"""Personal data from the command line.

    python -m tandem.privacy purge [--days N] [--dry-run]
    python -m tandem.privacy export-customer ID        # JSON on stdout
    python -m tandem.privacy delete-customer ID --yes

Uses DATABASE_URL (Settings). Exit codes: 0 done, 1 not found, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tandem.config import Settings
from tandem.db import make_engine, session_scope
from tandem.privacy import service
from tandem.privacy.retention import purge_old_transcripts

BAR_THRESHOLD = 200  # draw a progress bar only when there is much to delete


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.privacy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    parser.add_argument(
        "--rasa-tracker-db",
        type=Path,
        help="Rasa's SQLite tracker store: also delete Rasa's copy of the transcripts",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser("purge", help="delete transcripts older than the retention period")
    purge.add_argument("--days", type=int, help="retention in days (default RETENTION_DAYS)")
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    export = commands.add_parser("export-customer", help="everything about one customer (JSON)")
    export.add_argument("customer_id", type=int)
    remove = commands.add_parser("delete-customer", help="erase one customer's data")
    remove.add_argument("customer_id", type=int)
    remove.add_argument("--yes", action="store_true", help="really delete (required)")
    return parser


def _forget_in_rasa(tracker_db: Path | None, conversation_ids: Sequence[str]) -> None:
    if tracker_db is not None and conversation_ids:
        events = service.delete_rasa_tracker(tracker_db, conversation_ids)
        print(f"Deleted {events} Rasa tracker event(s).")


def _purge(settings: Settings, days: int, dry_run: bool, tracker_db: Path | None) -> int:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session, _progress() as progress:
            result = purge_old_transcripts(session, days, dry_run=dry_run, progress=progress)
    finally:
        engine.dispose()
    verb = "Would delete" if dry_run else "Deleted"
    print(
        f"{verb} {result.conversations} conversation(s), {result.messages} message(s), "
        f"{result.tickets} ticket(s) idle for more than {days} day(s)."
    )
    if not dry_run:
        _forget_in_rasa(tracker_db, result.conversation_ids)
    return 0


class _progress:
    """A rich progress bar, started lazily once a purge turns out to be large."""

    def __enter__(self) -> Callable[[int, int], None]:
        self._bar = None
        self._task = None
        return self.update

    def update(self, done: int, total: int) -> None:
        if total < BAR_THRESHOLD:
            return
        if self._bar is None:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task("Deleting conversations", total=total)
        self._bar.update(self._task, completed=done)

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if args.command == "purge":
        days = settings.retention_days if args.days is None else args.days
        if days < 0:
            print("--days must be 0 (keep forever) or more.", file=sys.stderr)
            return 2
        if days == 0:
            print("Retention is 0 days: transcripts are kept forever; nothing deleted.")
            return 0
        return _purge(settings, days, args.dry_run, args.rasa_tracker_db)
    if args.command == "delete-customer" and not args.yes:
        print("This erases the customer's data for good; add --yes to confirm.", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            if args.command == "export-customer":
                data = service.export_customer(session, args.customer_id)
                json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
                print()
            else:
                ids = service.customer_conversation_ids(session, args.customer_id)
                counts = service.delete_customer(session, args.customer_id)
                print("Deleted " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".")
    except service.CustomerNotFound as error:
        print(f"{error}.", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.command == "delete-customer":
        _forget_in_rasa(args.rasa_tracker_db, ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
