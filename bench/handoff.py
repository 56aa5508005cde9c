"""Handoff: policy precision/recall on the labelled scenarios, and queue claim throughput.

    .venv/bin/python bench/handoff.py [--analyzer] [--claims 2000] [--redis-url URL] [--record]

Policy: every labelled scenario goes through `handoff.turn.decide_turn`, the per-turn
step the gateway runs on every customer message (Mood, streaks, the policy of
handoff.yml), in four sets reported apart: `scripted` (tests/data/handoff_scenarios.yml,
written with the policy in view), `unscripted` (written from the kinds of need without
looking at the policy; the tuning set), `strangers` (a second tuning set, written the same
way by another helper on 2026-12-03), `held-out` (the same kinds, never tuned on, but
partly seen on 2026-12-03) and `held-out-2` (written on 2026-12-03 by a helper that read
neither the policy, the actions nor the other sets; never opened by the people tuning, see
bench/RESULTS.md).
A scenario is a positive when it is labelled to escalate.
Precision and recall count whether it escalated at all; "on time" also needs the
labelled turn. --analyzer rescores every turn with sentiment.Analyzer instead of the
hand-given scores (the end-to-end figure).

Queue: for each backend (in process; Redis when reachable), `--claims` conversations are
enqueued and claimed by 50 concurrent staff tasks (uncontended), then claimed by 20
simultaneous claimants each (contended: exactly one wins). Prints claims per second.

Staff latency: the time from a customer's message (HTTP POST to a real uvicorn gateway)
to the matching event on a staff member's /ws/staff, p50/p95 over `--messages` messages
in a queued conversation. In process: one gateway. Redis: the customer on gateway A and
the staff member on gateway B, so every event crosses Redis pub/sub.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import record_section
from handoff.policy import load_policy
from handoff.queue import HandoffQueue, InProcessQueue, QueueEntry
from handoff.replay import load_scenarios, replay_scenario, sentiment_tools
from tandem.config import get_settings

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SECOND_ANNOTATOR = DATA / "handoff_second_annotator.yml"
SCENARIO_SETS = {
    "scripted": DATA / "handoff_scenarios.yml",
    "unscripted": DATA / "handoff_scenarios_unscripted.yml",
    "strangers": DATA / "handoff_scenarios_strangers.yml",
    "held-out": DATA / "handoff_scenarios_holdout.yml",
    "held-out-2": DATA / "handoff_scenarios_holdout2.yml",
}


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

    def count(self, name: str, expected: int | None, got: int | None, why: str = "") -> None:
        """One scenario: labelled turn `expected`, first escalating turn `got` (None = never)."""
        self.scenarios += 1
        if expected is not None and got is not None:
            self.true_pos += 1
            self.on_time += got == expected
            self.early += got < expected
            self.late += got > expected
        elif got is not None:
            self.false_pos += 1
        elif expected is not None:
            self.false_neg += 1
        if got != expected:
            self.misses.append(f"{name} (expected {expected}, got {got}){why}")


def measure_policy(
    use_analyzer: bool, path: Path, turns: dict[str, tuple[int | None, int | None]] | None = None
) -> tuple[PolicyFigures, str]:
    """The policy's figures on one set; `turns` (if given) receives each scenario's
    (labelled turn, first escalating turn)."""
    settings = load_policy(get_settings().handoff_file)
    tools = sentiment_tools(use_analyzer=use_analyzer)
    figures = PolicyFigures(0, 0, 0, 0, 0, 0, 0, [])
    for scenario in load_scenarios(path):
        got = replay_scenario(
            scenario, settings, tools=tools, prefer_given_scores=not use_analyzer
        ).first_escalation
        figures.count(scenario.name, scenario.escalate_at, got)
        if turns is not None:
            turns[scenario.name] = (scenario.escalate_at, got)
    source = "Analyzer scores" if use_analyzer and tools.score_texts else "hand-given scores"
    if use_analyzer and not tools.score_texts:
        source += " (Analyzer unavailable)"
    return figures, f"{tools.description}; {source}"


def annotator_agreement(
    turns: dict[str, dict[str, tuple[int | None, int | None]]],
) -> list[str]:
    """How often two people agree on the handoff turn, and how the policy does against
    each: the sets' own labels beside a second, blind annotator's (SECOND_ANNOTATOR)."""
    second = yaml.safe_load(SECOND_ANNOTATOR.read_text(encoding="utf-8"))["labels"]
    both = same = same_outcome = scenarios = 0
    policy_second = PolicyFigures(0, 0, 0, 0, 0, 0, 0, [])
    on_either = either_total = 0
    for set_name, labels in second.items():
        for name, (first, got) in turns[set_name].items():
            other = labels[name]
            scenarios += 1
            same_outcome += (first is None) == (other is None)
            if first is not None and other is not None:
                both += 1
                same += first == other
                if got is not None:
                    either_total += 1
                    on_either += got in (first, other)
            policy_second.count(name, other, got)
    positives = policy_second.true_pos + policy_second.false_neg
    return [
        f"Second, blind annotator ({SECOND_ANNOTATOR.name}; the tuning sets, {scenarios} "
        "scenarios): the two people agree on whether a person is needed in "
        f"{same_outcome}/{scenarios} = {same_outcome / max(1, scenarios):.0%}, and on the "
        f"exact turn in {same}/{both} = {same / max(1, both):.0%} of the scenarios both "
        "send to a person. The policy against the second annotator: precision "
        f"{policy_second.precision:.2f}, recall {policy_second.recall:.2f}, on the labelled "
        f"turn {policy_second.on_time}/{positives} = "
        f"{policy_second.on_time / max(1, positives):.0%} (it was tuned on the first "
        f"labels, never on these); on either person's turn {on_either}/{either_total} = "
        f"{on_either / max(1, either_total):.0%}.",
    ]


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


async def _serve(app: object) -> tuple[object, int, object]:
    """A real uvicorn server for `app` in this event loop; returns (server, port, task)."""
    import uvicorn

    from tandem.run import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, port, task


async def staff_event_latency(messages: int, redis_url: str | None) -> list[float]:
    """Seconds from each customer POST to the staff WebSocket's customer_message event."""
    import json
    import tempfile

    import httpx
    from websockets.asyncio.client import connect

    from bot.app import create_app
    from handoff.policy import Decision, Reason
    from tandem.abuse.service import LIFTED_LIMITS
    from tandem.config import Settings
    from tandem.conversations import service, transitions
    from tandem.db import migrate, session_scope
    from tandem.staff import service as staff_service

    workdir = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate(url)
    prefix = f"tandem-bench-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=prefix,
        sentiment_enabled=False,  # the staff event goes out before scoring anyway
        rasa_url="http://127.0.0.1:9",
        **LIFTED_LIMITS,  # one client sends every message: not what is measured
    )
    customer_app = create_app(settings)
    staff_app = create_app(settings) if redis_url else customer_app
    with session_scope(customer_app.state.engine) as session:
        user = staff_service.create_user(
            session, email="bench@shop.example", password="bench password", display_name="B"
        )
        token = staff_service.start_session(session, user).token
        conversation = service.create_conversation(session)
        chat_token = service.issue_token(conversation)
        bench = Decision("escalate", 1, [Reason("bench", "bench")])
        transitions.escalate(session, conversation, bench, actor="bench")
        conversation_id = conversation.id
    servers = [await _serve(customer_app)]
    if staff_app is not customer_app:
        servers.append(await _serve(staff_app))
    customer_port, staff_port = servers[0][1], servers[-1][1]
    latencies: list[float] = []
    try:
        async with (
            connect(
                f"ws://127.0.0.1:{staff_port}/ws/staff",
                additional_headers={"Cookie": f"tandem_session={token}"},
            ) as socket,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{customer_port}",
                headers={"X-Conversation-Token": chat_token},
            ) as client,
        ):
            assert json.loads(await socket.recv())["type"] == "ready"
            for index in range(messages + 5):
                text = f"bench message {index}"
                start = time.perf_counter()
                post = asyncio.create_task(
                    client.post(
                        f"/api/conversations/{conversation_id}/messages", json={"text": text}
                    )
                )
                while True:
                    frame = json.loads(await socket.recv())
                    if frame.get("type") == "customer_message" and frame["message"]["text"] == text:
                        break
                if index >= 5:  # the first few warm connections and caches up
                    latencies.append(time.perf_counter() - start)
                (await post).raise_for_status()
    finally:
        for server, _, task in servers:
            server.should_exit = True  # type: ignore[attr-defined]
            await task  # type: ignore[misc]
        if redis_url:
            from redis.asyncio import Redis

            client = Redis.from_url(redis_url)
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    return latencies


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure_staff_latency(messages: int, redis_url: str | None) -> list[tuple[str, str, str]]:
    rows = []
    backends: list[tuple[str, str | None]] = [("in process (one gateway)", None)]
    if redis_url:
        backends.append(("Redis (customer on A, staff on B)", redis_url))
    for name, url in backends:
        try:
            values = asyncio.run(staff_event_latency(messages, url))
        except OSError as error:
            rows.append((name, f"unavailable: {error}", "–"))
            continue
        rows.append(
            (
                name,
                f"{_percentile(values, 0.5) * 1000:.1f} ms",
                f"{_percentile(values, 0.95) * 1000:.1f} ms",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--analyzer", action="store_true", help="rescore turns with the model")
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=200, help="for the staff latency")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)

    # Hand-given scores always; with --analyzer also the model's scores, side by side.
    sources = [False, True] if args.analyzer else [False]
    # Each scenario's (labelled, escalating) turns, scored as the last source scores them.
    turns: dict[str, dict[str, tuple[int | None, int | None]]] = {}
    runs = [
        (name, *measure_policy(analyzer, path, turns.setdefault(name, {})))
        for analyzer in sources
        for name, path in SCENARIO_SETS.items()
    ]
    counts = {name: figures.scenarios for name, figures, _ in runs}
    scenario_count = sum(counts.values())
    policy = Table(title=f"Handoff policy (the gateway's per-turn step) on {scenario_count} "
                   "labelled scenarios")  # fmt: skip
    for column in ("set", "sentiment", "precision", "recall", "on time", "early", "late",
                   "false alarms", "missed"):  # fmt: skip
        policy.add_column(column, justify="right")
    summaries: list[str] = []
    for name, figures, setup in runs:
        positives = figures.true_pos + figures.false_neg
        policy.add_row(
            name,
            setup.split(";")[-1].strip(),
            f"{figures.precision:.2f}",
            f"{figures.recall:.2f}",
            f"{figures.on_time}/{positives}",
            str(figures.early),
            str(figures.late),
            str(figures.false_pos),
            str(figures.false_neg),
        )
        summaries += [
            f"**{name}** ({figures.scenarios} scenarios), {setup}: precision "
            f"{figures.precision:.2f}, recall "
            f"{figures.recall:.2f}, on the labelled turn {figures.on_time}/{positives} "
            f"(early {figures.early}, late {figures.late}), false alarms {figures.false_pos}, "
            f"missed {figures.false_neg}.",
            "",
            *[f"- differs: {miss}" for miss in figures.misses],
            "",
        ]
    per_source = len(SCENARIO_SETS)  # runs holds each source's sets in turn
    for index, analyzer in enumerate(sources):
        total = PolicyFigures(0, 0, 0, 0, 0, 0, 0, [])
        for _, figures, _ in runs[index * per_source : (index + 1) * per_source]:
            for field in ("scenarios", "true_pos", "false_pos", "false_neg", "on_time",
                          "early", "late"):  # fmt: skip
                setattr(total, field, getattr(total, field) + getattr(figures, field))
        positives = total.true_pos + total.false_neg
        summaries += [
            f"**All sets, {'Analyzer' if analyzer else 'hand-given'} scores** "
            f"({total.scenarios} scenarios): precision {total.precision:.2f}, recall "
            f"{total.recall:.2f}, on the labelled turn {total.on_time}/{positives} "
            f"({total.on_time / max(1, positives):.0%}).",
            "",
        ]
    agreement = annotator_agreement(turns)
    summaries += [*agreement, ""]
    console.print(policy)
    console.print(*agreement)
    for name, figures, setup in runs:
        for miss in figures.misses:
            console.print(f"  differs ({name}, {setup.split(';')[-1].strip()}): {miss}")

    rows = asyncio.run(measure_queues(args.claims, None if args.no_redis else args.redis_url))
    queues = Table(title=f"Queue claims per second ({args.claims:,} conversations)")
    queues.add_column("backend")
    queues.add_column("uncontended claims/s", justify="right")
    queues.add_column("contended attempts/s (20 per conversation)", justify="right")
    for row in rows:
        queues.add_row(*row)
    console.print(queues)

    redis_url = None if args.no_redis else args.redis_url
    latency_rows = measure_staff_latency(args.messages, redis_url)
    latency = Table(title=f"Customer message -> staff WebSocket event ({args.messages} messages)")
    for column in ("backend", "p50", "p95"):
        latency.add_column(column, justify="right" if column != "backend" else "left")
    for row in latency_rows:
        latency.add_row(*row)
    console.print(latency)

    if args.record:
        sets = ", ".join(
            f"{name} {count} ({SCENARIO_SETS[name].name})" for name, count in counts.items()
        )
        lines = [
            f"{scenario_count} labelled scenarios through `handoff.turn.decide_turn`, the "
            f"gateway's own per-turn step: {sets}. Tuning sets: scripted, unscripted, "
            "strangers. The held-out sets are never tuned on; `held-out` was partly seen "
            "on 2026-12-03 (see below), `held-out-2` is the clean one.",
            "",
            *summaries,
            "| queue backend | uncontended claims/s | contended attempts/s (20 per conversation) |",
            "|---|---:|---:|",
            *[f"| {a} | {b} | {c} |" for a, b, c in rows],
            "",
            f"Customer message (HTTP POST) to the staff WebSocket event, {args.messages} "
            "messages in a queued conversation, real uvicorn servers:",
            "",
            "| backend | p50 | p95 |",
            "|---|---:|---:|",
            *[f"| {a} | {b} | {c} |" for a, b, c in latency_rows],
        ]
        command = "python bench/handoff.py" + (" --analyzer" if args.analyzer else "")
        record_section("Handoff policy and queue", command + " --record", lines)
        console.print("recorded in bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
