"""Sentiment scoring for the gateway: off the event loop, micro-batched.

Every customer message is scored, but never on the event loop: one worker thread runs
the model. Messages that arrive together are scored together: the first one opens a
batch, which closes after `max_wait_seconds` or at `max_batch` texts, and one
`score_batch` call answers them all (a forward over 8 texts costs little more than over
one on CPU). The gateway starts scoring beside the Rasa call, so the customer's latency
barely grows.

If the model cannot be loaded, chatting goes on: the problem is logged once, messages
are stored without a score, and `status` says "unavailable" (shown by /healthz).

A customer's turn never waits for the model to load: `turn_wait_seconds` is how long a
turn may wait for its score after Rasa answered (a short grace while loading, a timeout
once loaded). A score that comes later is stored by the gateway in the background.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Protocol

from sentiment.analyzer import SentimentScores

logger = logging.getLogger(__name__)

Status = Literal["disabled", "not_loaded", "ok", "unavailable"]


class BatchAnalyzer(Protocol):
    def score_batch(self, texts: list[str]) -> list[SentimentScores]: ...


def _default_analyzer() -> BatchAnalyzer:
    from sentiment.analyzer import Analyzer

    # The gateway scores while Rasa answers on the same CPU; one torch thread leaves Rasa
    # a core and keeps the customer's latency lowest (bench/latency.py).
    return Analyzer(num_threads=int(os.environ.get("SENTIMENT_THREADS") or 1)).load()


class SentimentBatcher:
    def __init__(
        self,
        analyzer_factory: Callable[[], BatchAnalyzer] = _default_analyzer,
        *,
        enabled: bool = True,
        max_batch: int = 32,
        max_wait_seconds: float = 0.005,
        score_timeout_seconds: float = 1.0,
        loading_grace_seconds: float = 0.05,
    ) -> None:
        self._factory = analyzer_factory
        self._analyzer: BatchAnalyzer | None = None
        self.enabled = enabled
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self.status: Status = "not_loaded" if enabled else "disabled"
        self.score_timeout_seconds = score_timeout_seconds
        self.loading_grace_seconds = loading_grace_seconds
        # One thread: the analyzer serialises inference anyway, and a second thread would
        # only contend with uvicorn for the (few) cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment")
        self._pending: list[tuple[str, asyncio.Future[SentimentScores | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches_run = 0  # for tests and the benchmark

    def _load(self) -> BatchAnalyzer | None:
        """In the worker thread: the analyzer, loading it the first time (None = unavailable)."""
        if self._analyzer is None and self.status != "unavailable":
            try:
                self._analyzer = self._factory()
                self.status = "ok"
            except Exception as error:
                self.status = "unavailable"
                logger.error(
                    "sentiment scoring is off: %s. Messages are stored without a score.", error
                )
        return self._analyzer

    async def warm_up(self) -> None:
        """Load the models before the first customer waits for them: the sentiment model,
        and the sentence encoder the Mood uses for rephrased requests and off-topic replies
        (it would otherwise load inside the first turn's step, on the event loop)."""
        loop = asyncio.get_running_loop()
        if self.enabled:
            await loop.run_in_executor(self._executor, self._load)
        await loop.run_in_executor(self._executor, _load_meaning_encoder)

    def turn_wait_seconds(self) -> float:
        """How long a customer's turn may wait for its score once Rasa has answered.

        While the model loads (seconds on a busy CPU) only a short grace: the reply goes out
        and the message is scored later. Off or unavailable: no wait at all.
        """
        if self.status == "ok":
            return self.score_timeout_seconds
        if self.status == "not_loaded":
            return self.loading_grace_seconds
        return 0.0

    async def score(self, text: str) -> SentimentScores | None:
        """The scores of one text, or None when scoring is off or unavailable."""
        if not self.enabled or self.status == "unavailable":
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SentimentScores | None] = loop.create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self.max_batch:
            self._flush_now()
        elif self._flusher is None:
            self._flusher = loop.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.max_wait_seconds)
        self._flusher = None
        self._flush_now()

    def _flush_now(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if batch:
            asyncio.get_running_loop().create_task(self._run(batch))
        if self._pending:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _run(self, batch: list[tuple[str, asyncio.Future[SentimentScores | None]]]) -> None:
        texts = [text for text, _ in batch]
        loop = asyncio.get_running_loop()
        try:
            results: list[SentimentScores] | None = await loop.run_in_executor(
                self._executor, self._score_in_thread, texts
            )
        except Exception:
            logger.exception("sentiment scoring failed for a batch of %d", len(texts))
            results = None
        self.batches_run += 1
        for index, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(results[index] if results is not None else None)

    def _score_in_thread(self, texts: list[str]) -> list[SentimentScores] | None:
        analyzer = self._load()
        return analyzer.score_batch(texts) if analyzer is not None else None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _load_meaning_encoder() -> None:
    from sentiment.meaning import default_encoder

    encoder = default_encoder()
    if encoder is None:
        return
    try:
        encoder.load()
    except Exception:  # the Mood then judges repeats by words; the chat goes on
        logger.exception("the sentence encoder could not load")
