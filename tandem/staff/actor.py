"""Who acts on a conversation: a copy of the logged-in staff member, free of the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StaffRef:
    id: int
    display_name: str
    role: str
    capacity: int

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"

    @property
    def queue_id(self) -> str:
        return str(self.id)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


class Actor(Protocol):
    """Whoever a transition records as acting: a StaffRef, or a demo name (demo history)."""

    @property
    def id(self) -> int | None: ...

    @property
    def display_name(self) -> str: ...

    @property
    def actor(self) -> str: ...

    @property
    def is_owner(self) -> bool: ...
