"""Dry-run the handoff policy: replay a conversation and print the decision for each turn.

    python -m tandem.dryrun tests/data/handoff_dryrun_example.yml
    python -m tandem.dryrun tests/data/handoff_scenarios.yml --scenario legal_lawyer
    python -m tandem.dryrun --policy my-handoff.yml --database-url sqlite:///var/tandem.db \\
        --conversation 3f2a...

A scripted file holds one conversation (customer profile + turns, see handoff.replay) or
a `scenarios:` list. Every turn goes through `handoff.turn.decide_turn`, the step the
gateway runs. Turns without a sentiment score are scored by sentiment.Analyzer when
its model is available; otherwise they count as neutral, and the output says so.
Exit status: 0, or 2 when a file, the policy or the conversation cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handoff.policy import PolicyError, load_policy
from handoff.replay import (
    CustomerProfile,
    ReplayResult,
    Scenario,
    ScenarioError,
    Turn,
    load_scenarios,
    replay_scenario,
    sentiment_tools,
)
from tandem.business.models import Customer, Order
from tandem.config import get_settings
from tandem.conversations.facts import OPEN_ORDER_STATES
from tandem.conversations.models import Conversation, Message
from tandem.db import make_engine, session_scope


def load_stored_conversation(database_url: str, conversation_id: str) -> Scenario:
    """A stored conversation as a scenario: its customer messages with intent and score."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ScenarioError(f"no conversation {conversation_id!r} in {database_url}")
            messages = session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.sender == "customer")
                .order_by(Message.id)
            ).all()
            turns = [
                Turn(
                    text=m.text,
                    intent=m.intent,
                    confidence=m.intent_confidence,
                    sentiment=m.sentiment_score,
                )
                for m in messages
            ]
            if not turns:
                raise ScenarioError(f"conversation {conversation_id!r} has no customer messages")
            customer = _stored_customer(session, conversation)
    finally:
        engine.dispose()
    return Scenario(name=conversation_id, category="stored", customer=customer, turns=turns)


def _stored_customer(session: Session, conversation: Conversation) -> CustomerProfile | None:
    if conversation.customer_id is None:
        return None
    customer = session.get(Customer, conversation.customer_id)
    if customer is None:
        return None
    open_order = session.scalar(
        select(func.max(Order.total)).where(
            Order.customer_id == customer.id,
            Order.status.in_([s.value for s in OPEN_ORDER_STATES]),
        )
    )
    return CustomerProfile(
        verified=bool(conversation.customer_verified),
        tier=customer.tier,
        lifetime_value=float(customer.lifetime_value or 0),
        open_order_value=float(open_order) if open_order is not None else None,
    )


def _number(value: float | None, fmt: str = "{:+.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def render(result: ReplayResult, console: Console) -> None:
    scenario = result.scenario
    title = f"[bold]{scenario.name}[/bold]" + (
        f" ({scenario.category})" if scenario.category else ""
    )
    table = Table(title=title, title_justify="left", show_lines=True, expand=True)
    table.add_column("#", justify="right", width=3)
    table.add_column("customer says", ratio=3)
    table.add_column("intent", ratio=1)
    table.add_column("sentiment", justify="right", width=9)
    table.add_column("frustr.", justify="right", width=7)
    table.add_column("neg/fb", justify="center", width=6)
    table.add_column("decision", width=12)
    table.add_column("reasons and notes", ratio=3)
    seen: set[str] = set()
    for turn in result.turns:
        decision = turn.decision
        intent = turn.turn.intent or "–"
        if turn.turn.confidence is not None:
            intent += f" ({turn.turn.confidence:.2f})"
        sentiment = _number(turn.sentiment)
        if turn.sentiment_source == "analyzer":
            sentiment += "*"
        verdict = (
            Text(f"ESCALATE p{decision.priority}", style="bold red")
            if decision.escalate
            else Text("stay", style="green")
        )
        lines = [Text(f"• {reason.text}") for reason in decision.reasons]
        # A note repeated on every turn (an unverified claim) is shown once.
        notes = [note.text for note in decision.notes]
        lines += [Text(f"· {note}", style="dim") for note in notes if note not in seen]
        seen.update(notes)
        details = Text("\n").join(lines)
        table.add_row(
            str(turn.number),
            turn.turn.text,
            intent,
            sentiment,
            _number(turn.frustration, "{:.2f}"),
            f"{turn.negative_streak}/{turn.fallback_streak}",
            verdict,
            details,
        )
    console.print(table)
    first = result.first_escalation
    outcome = f"escalates at turn {first}" if first else "stays with the bot"
    if scenario.escalate_at is not None or "escalate_at" in scenario.model_fields_set:
        expected = scenario.escalate_at
        wanted = f"turn {expected}" if expected else "no escalation"
        mark = "[green]as expected[/green]" if first == expected else "[red]differs[/red]"
        console.print(f"→ {outcome}; expected {wanted}: {mark}\n")
    else:
        console.print(f"→ {outcome}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.dryrun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="scripted conversation (YAML)")
    parser.add_argument("--policy", help="handoff policy file (default: the project's handoff.yml)")
    parser.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    parser.add_argument("--no-analyzer", action="store_true", help="do not load the model")
    parser.add_argument("--rescore", action="store_true", help="score every turn with the Analyzer")
    parser.add_argument("--database-url", help="replay a stored conversation from this database")
    parser.add_argument("--conversation", help="id of the stored conversation")
    args = parser.parse_args(argv)
    # Piped output (CI logs, less) gets a readable width instead of 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True)

    if bool(args.database_url) != bool(args.conversation):
        parser.error("--database-url and --conversation go together")
    if not args.file and not args.conversation:
        parser.error("give a scripted FILE or --database-url URL --conversation ID")

    try:
        settings = load_policy(args.policy or get_settings().handoff_file)
        scenarios: list[Scenario] = []
        if args.file:
            scenarios.extend(load_scenarios(args.file))
        if args.conversation:
            scenarios.append(load_stored_conversation(args.database_url, args.conversation))
    except (PolicyError, ScenarioError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        return 2
    if args.scenario:
        wanted = set(args.scenario)
        unknown = wanted - {s.name for s in scenarios}
        if unknown:
            err.print(f"[red]error:[/red] no scenario named {', '.join(sorted(unknown))}")
            return 2
        scenarios = [s for s in scenarios if s.name in wanted]

    tools = sentiment_tools(use_analyzer=not args.no_analyzer)
    console.print(f"[dim]policy: {args.policy or 'handoff.yml'}; {tools.description}[/dim]")
    for note in tools.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if tools.score_texts:
        console.print("[dim]* = scored by the Analyzer[/dim]")
    for scenario in scenarios:
        result = replay_scenario(
            scenario, settings, tools=tools, prefer_given_scores=not args.rescore
        )
        render(result, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
