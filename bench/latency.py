"""Round-trip latency of one customer message: through the gateway vs Rasa's REST webhook.

Starts the real stack (action server, Rasa, gateway) on a fresh SQLite database, then
sends the same routine messages both ways, interleaved, in the same run:

    .venv/bin/python bench/latency.py [--messages 300] [--record]

Prints p50/p95 for each path and their ratio; --record writes them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import track
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import record_section
from tandem.abuse.service import LIFTED_LIMITS
from tandem.run import Stack

# Routine questions a customer asks; each conversation sends a few of them.
MESSAGES = [
    "hi",
    "what time do you open on saturday?",
    "where are you located",
    "how much is shipping",
    "what's your return policy",
    "do you take apple pay",
    "is the classic denim jacket in stock in M",
    "what's your phone number",
    "thanks!",
    "bye",
]


def percentile(samples: list[float], q: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if q < 100 else max(samples)
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    console = Console()

    state = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    # The REST path is compared; one client sends every message, so the per-client abuse
    # limits are lifted for the measurement.
    stack = Stack.isolated(state, rasa_rest_channel=True, **LIFTED_LIMITS)
    settings = stack.settings
    model = stack.preflight()
    console.print("starting the stack…")
    stack.start(model)
    gateway_times: list[float] = []
    rasa_times: list[float] = []
    try:
        gateway = httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway_port}", timeout=30)
        rasa = httpx.Client(base_url=settings.rasa_url, timeout=30)
        conversation = ""
        sender = ""
        for i in track(range(args.messages + 20), description="messages", console=console):
            text = MESSAGES[i % len(MESSAGES)]
            if i % len(MESSAGES) == 0:
                created = gateway.post("/api/conversations").json()
                conversation = created["id"]
                gateway.headers["X-Conversation-Token"] = created["token"]
                sender = uuid.uuid4().hex
            # Alternate which path goes first so that neither always finds a warm cache.
            order = ("gateway", "rasa") if i % 2 else ("rasa", "gateway")
            for path in order:
                started = time.perf_counter()
                if path == "gateway":
                    response = gateway.post(
                        f"/api/conversations/{conversation}/messages", json={"text": text}
                    )
                else:
                    response = rasa.post(
                        "/webhooks/rest/webhook", json={"sender": sender, "message": text}
                    )
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if i >= 20:  # the first rounds warm up both paths
                    (gateway_times if path == "gateway" else rasa_times).append(elapsed)
    finally:
        stack.stop()

    rows = [
        ("Tandem gateway (store, Rasa, store)", gateway_times),
        ("Rasa REST webhook alone", rasa_times),
    ]
    table = Table(title=f"Round trip of one message, {args.messages} messages each, ms")
    for column in ("path", "p50", "p95", "mean"):
        table.add_column(column)
    for name, samples in rows:
        table.add_row(
            name,
            f"{percentile(samples, 50):.1f}",
            f"{percentile(samples, 95):.1f}",
            f"{statistics.fmean(samples):.1f}",
        )
    console.print(table)
    ratio = percentile(gateway_times, 95) / percentile(rasa_times, 95)
    console.print(f"gateway p95 / Rasa p95 = {ratio:.2f} (target ≤ 1.20)")

    if args.record:
        lines = [
            "| path | p50 ms | p95 ms |",
            "|---|---|---|",
            *[
                f"| {name} | {percentile(s, 50):.1f} | {percentile(s, 95):.1f} |"
                for name, s in rows
            ],
            "",
            f"Gateway p95 / Rasa-direct p95 = **{ratio:.2f}** (target ≤ 1.20). "
            f"{args.messages} messages each way, interleaved, same run, SQLite.",
        ]
        record_section("Gateway latency", "python bench/latency.py --record", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
