"""Sentiment scoring and conversation mood tracking for Tandem (no web code here).

Public API:
    Analyzer, SentimentScores, SentimentModelError, get_analyzer  (sentiment.analyzer)
    Mood, MoodSettings                                            (sentiment.mood)
    default_model_path, ensure_default_model                      (sentiment.train)

Heavy imports (torch, transformers) happen only when the analyzer or trainer is used,
so `from sentiment import Mood` stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Tandem is offline by default: decide before transformers/huggingface_hub are imported,
# because huggingface_hub reads HF_HUB_OFFLINE once, at import time.
if os.environ.get("SENTIMENT_ALLOW_HUB", "").strip().lower() not in {"1", "true", "yes"}:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if TYPE_CHECKING:
    from sentiment.analyzer import Analyzer, SentimentModelError, SentimentScores, get_analyzer
    from sentiment.mood import Mood, MoodSettings
    from sentiment.train import default_model_path, ensure_default_model

_EXPORTS = {
    "Analyzer": "sentiment.analyzer",
    "SentimentScores": "sentiment.analyzer",
    "SentimentModelError": "sentiment.analyzer",
    "get_analyzer": "sentiment.analyzer",
    "Mood": "sentiment.mood",
    "MoodSettings": "sentiment.mood",
    "default_model_path": "sentiment.train",
    "ensure_default_model": "sentiment.train",
}

__all__ = [
    "Analyzer",
    "Mood",
    "MoodSettings",
    "SentimentModelError",
    "SentimentScores",
    "default_model_path",
    "ensure_default_model",
    "get_analyzer",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sentiment' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
