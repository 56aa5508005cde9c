"""What the desk refuses, as domain errors; the HTTP views map each kind to a status."""

from __future__ import annotations


class DeskError(Exception):
    """A desk action that cannot be done; `detail` is shown to the person who tried."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Conflict(DeskError):
    """The conversation or the queue is not in a state that allows it (someone was faster)."""


class NotHolder(DeskError):
    """Someone else holds the conversation."""


class InvalidRequest(DeskError):
    """The request names something that does not exist or cannot be used."""
