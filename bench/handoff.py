"""Handoff: policy precision/recall on the labelled scenarios, and queue claim throughput.

    .venv/bin/python bench/handoff.py [--analyzer] [--claims 2000] [--redis-url URL] [--record]

Policy: every scenario of tests/data/handoff_scenarios.yml is replayed through Mood and
the policy of handoff.yml. A scenario is a positive when it is labelled to escalate.
Precision and recall count whether it escalated at all; "on time" also needs the
labelled turn. --analyzer rescores every turn with sentiment.Analyzer instead of the
hand-given scores (the end-to-end figure).

Queue: for each backend (in process; Redis when reachable), `--claims` conversations are
enqueued and claimed by 50 concurrent staff tasks (uncontended), then claimed by 20
simultaneous claimants each (contended: exactly one wins). Prints claims per second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import record_section
from handoff.policy import load_policy
from handoff.queue import HandoffQueue, InProcessQueue, QueueEntry
from handoff.replay import load_scenarios, replay_scenario, sentiment_tools

SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "data" / "handoff_scenarios.yml"


@dataclass
class PolicyFigures:
    scenarios: int
    true_pos: int
    false_pos: int
    false_neg: int
    on_time: int
    early: int
    late: int
    misses: list[str]

    @property
    def precision(self) -> float:
        predicted = self.true_pos + self.false_pos
        return self.true_pos / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_pos + self.false_neg
        return self.true_pos / actual if actual else 1.0


def measure_policy(use_analyzer: bool) -> tuple[PolicyFigures, str]:
    settings = load_policy()
    tools = sentiment_tools(use_analyzer=use_analyzer)
    figures = PolicyFigures(0, 0, 0, 0, 0, 0, 0, [])
    for scenario in load_scenarios(SCENARIOS):
        got = replay_scenario(
            scenario, settings, tools=tools, prefer_given_scores=not use_analyzer
        ).first_escalation
        expected = scenario.escalate_at
        figures.scenarios += 1
        if expected is not None and got is not None:
            figures.true_pos += 1
            figures.on_time += got == expected
            figures.early += got < expected
            figures.late += got > expected
        elif got is not None:
            figures.false_pos += 1
        elif expected is not None:
            figures.false_neg += 1
        if got != expected:
            figures.misses.append(f"{scenario.name} (expected {expected}, got {got})")
    source = "Analyzer scores" if use_analyzer and tools.score_texts else "hand-given scores"
    if use_analyzer and not tools.score_texts:
        source += " (Analyzer unavailable)"
    return figures, f"{tools.description}; {source}"


async def claims_per_second(queue: HandoffQueue, conversations: int) -> tuple[float, float]:
    staff = [f"bench-staff-{i}" for i in range(50)]
    for staff_id in staff:
        await queue.set_presence(staff_id, "online", conversations)
    now = time.time()

    async def fill(tag: str) -> list[str]:
        ids = [f"{tag}-{i}" for i in range(conversations)]
        for index, conversation_id in enumerate(ids):
            await queue.enqueue(QueueEntry(conversation_id, 1, now + index))
        return ids

    ids = await fill("u")
    start = time.perf_counter()

    async def worker(staff_id: str, mine: list[str]) -> None:
        for conversation_id in mine:
            assert (await queue.claim(conversation_id, staff_id)).ok

    await asyncio.gather(*(worker(s, ids[i :: len(staff)]) for i, s in enumerate(staff)))
    uncontended = conversations / (time.perf_counter() - start)

    ids = await fill("c")
    start = time.perf_counter()
    for conversation_id in ids:
        results = await asyncio.gather(*(queue.claim(conversation_id, s) for s in staff[:20]))
        assert sum(r.ok for r in results) == 1
    contended = conversations * 20 / (time.perf_counter() - start)
    return uncontended, contended


async def measure_queues(claims: int, redis_url: str | None) -> list[tuple[str, str, str]]:
    rows = []
    memory = InProcessQueue(presence_ttl_seconds=3600)
    fast, contended = await claims_per_second(memory, claims)
    rows.append(("in process", f"{fast:,.0f}", f"{contended:,.0f}"))
    if redis_url:
        from redis.exceptions import ConnectionError as RedisConnectionError

        from handoff.redis_queue import RedisQueue

        prefix = f"tandem-bench-{uuid.uuid4().hex[:8]}:"
        queue = RedisQueue.from_url(redis_url, prefix, presence_ttl_seconds=3600)
        try:
            await queue.client.ping()
            fast, contended = await claims_per_second(queue, claims)
            rows.append(("Redis (one client)", f"{fast:,.0f}", f"{contended:,.0f}"))
        except (RedisConnectionError, OSError) as error:
            rows.append(("Redis", f"unreachable: {error}", "–"))
        finally:
            keys = [key async for key in queue.client.scan_iter(match=f"{prefix}*")]
            if keys:
                await queue.client.delete(*keys)
            await queue.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--analyzer", action="store_true", help="rescore turns with the model")
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)

    # Hand-given scores always; with --analyzer also the model's scores, side by side.
    runs = [measure_policy(False)] + ([measure_policy(True)] if args.analyzer else [])
    scenario_count = runs[0][0].scenarios
    policy = Table(title=f"Handoff policy on {scenario_count} labelled scenarios")
    for column in ("sentiment", "precision", "recall", "on time", "early", "late",
                   "false alarms", "missed"):  # fmt: skip
        policy.add_column(column, justify="right")
    summaries: list[str] = []
    for figures, setup in runs:
        positives = figures.true_pos + figures.false_neg
        policy.add_row(
            setup,
            f"{figures.precision:.2f}",
            f"{figures.recall:.2f}",
            f"{figures.on_time}/{positives}",
            str(figures.early),
            str(figures.late),
            str(figures.false_pos),
            str(figures.false_neg),
        )
        summaries += [
            f"Policy with {setup}: precision {figures.precision:.2f}, recall "
            f"{figures.recall:.2f}, on the labelled turn {figures.on_time}/{positives} "
            f"(early {figures.early}, late {figures.late}), false alarms {figures.false_pos}, "
            f"missed {figures.false_neg}.",
            "",
            *[f"- differs: {miss}" for miss in figures.misses],
            "",
        ]
    console.print(policy)
    for figures, setup in runs:
        for miss in figures.misses:
            console.print(f"  differs ({setup.split(';')[-1].strip()}): {miss}")

    rows = asyncio.run(measure_queues(args.claims, None if args.no_redis else args.redis_url))
    queues = Table(title=f"Queue claims per second ({args.claims:,} conversations)")
    queues.add_column("backend")
    queues.add_column("uncontended claims/s", justify="right")
    queues.add_column("contended attempts/s (20 per conversation)", justify="right")
    for row in rows:
        queues.add_row(*row)
    console.print(queues)

    if args.record:
        lines = [
            f"{scenario_count} labelled scenarios (tests/data/handoff_scenarios.yml).",
            "",
            *summaries,
            "| queue backend | uncontended claims/s | contended attempts/s (20 per conversation) |",
            "|---|---:|---:|",
            *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        ]
        command = "python bench/handoff.py" + (" --analyzer" if args.analyzer else "")
        record_section("Handoff policy and queue", command + " --record", lines)
        console.print("recorded in bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
