"""SentimentBatcher: a customer's turn never waits for a model that is still loading."""

from __future__ import annotations

import asyncio
import threading

from sentiment.analyzer import SentimentScores
from tandem.scoring import SentimentBatcher


class FakeSlowLoadingAnalyzer:
    """Fake model: loading blocks until the test releases it; every text scores neutral."""

    def __init__(self) -> None:
        self.loaded = threading.Event()

    def load(self) -> FakeSlowLoadingAnalyzer:
        assert self.loaded.wait(10), "the test never released the model"
        return self

    def score_batch(self, texts: list[str]) -> list[SentimentScores]:
        return [SentimentScores(0.1, 0.8, 0.1) for _ in texts]


async def test_the_wait_a_turn_allows_follows_the_model_status() -> None:
    analyzer = FakeSlowLoadingAnalyzer()
    batcher = SentimentBatcher(
        analyzer.load, max_wait_seconds=0.001, score_timeout_seconds=0.8, loading_grace_seconds=0.02
    )
    assert (batcher.status, batcher.turn_wait_seconds()) == ("not_loaded", 0.02)
    warm_up = asyncio.ensure_future(batcher.warm_up())
    scoring = asyncio.ensure_future(batcher.score("hello"))
    done, _ = await asyncio.wait({scoring}, timeout=batcher.turn_wait_seconds())
    assert not done  # still loading: the turn goes on without it
    analyzer.loaded.set()
    assert (await scoring) == SentimentScores(0.1, 0.8, 0.1)  # scored once loaded: not lost
    await warm_up
    assert (batcher.status, batcher.turn_wait_seconds()) == ("ok", 0.8)
    assert SentimentBatcher(enabled=False).turn_wait_seconds() == 0.0
    batcher.close()
