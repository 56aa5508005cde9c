"""Writes one section of bench/RESULTS.md, leaving the other sections as they are."""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nLatest figures; each section names the command that produced it.\n"


def record_section(title: str, command: str, lines: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(
        [
            f"## {title}",
            "",
            f"Command: `{command}`  ",
            f"Run: {stamp} on {platform.machine()}, {_cpus()} CPU cores.",
            "",
            *lines,
            "",
        ]
    )
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _: body + "\n", text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + body)
    )
    RESULTS.write_text(text)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
