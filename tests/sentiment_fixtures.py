"""Shared helpers for the sentiment tests (kept out of conftest.py, which the lead owns)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def trained_model_path() -> Path:
    """The real default model, trained once if it is not cached (about 1-5 minutes)."""
    from sentiment.train import ensure_default_model

    return ensure_default_model(progress=False)
