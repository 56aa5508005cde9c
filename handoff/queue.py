"""The handoff queue: waiting conversations, staff presence and assignment.

One async interface, `HandoffQueue`, with two backends that pass one contract suite:

- `InProcessQueue` (here): plain dicts in one gateway process; gone on restart.
- `RedisQueue` (handoff.redis_queue): Lua scripts on Redis, shared by several gateway
  processes and surviving their restarts.

Ordering: priority descending, then enqueued_at ascending, so that under equal priority
whoever waited longest is served first. Assignment rules, identical in both backends:

- `claim`: the conversation must be queued, the staff member online, below capacity;
  of many simultaneous claims exactly one wins.
- `auto_assign`: the least-loaded online staff member with free capacity; ties go to
  the one whose last assignment is oldest (longest idle), then the smaller staff id.
- Presence expires `presence_ttl_seconds` after the last `set_presence`/`heartbeat`;
  an expired staff member counts as offline (keeps existing assignments, gets no new ones).
"""

from __future__ import annotations

import json
import statistics
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

PresenceState = Literal["online", "away", "offline"]
PRESENCE_STATES: frozenset[str] = frozenset({"online", "away", "offline"})

DEFAULT_PRESENCE_TTL_SECONDS = 30.0
DEFAULT_HANDLE_TIME_HISTORY = 50
DEFAULT_HANDLE_SECONDS = 300.0

Clock = Callable[[], float]


@dataclass(slots=True)
class QueueEntry:
    conversation_id: str
    priority: int
    enqueued_at: float
    reasons: list[str] = field(default_factory=list)
    customer_value: float = 0.0
    customer_label: str = ""
    # When staff were last told about it (SLA re-announcements); None means enqueued_at.
    announced_at: float | None = None

    def __post_init__(self) -> None:
        if self.announced_at is None:
            self.announced_at = self.enqueued_at

    def sort_key(self) -> tuple[int, float, str]:
        return (-self.priority, self.enqueued_at, self.conversation_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StaffPresence:
    staff_id: str
    state: PresenceState
    capacity: int
    last_seen: float | None
    load: int = 0
    last_assigned_at: float = 0.0

    @property
    def has_free_capacity(self) -> bool:
        return self.state == "online" and self.load < self.capacity


ClaimCode = Literal[
    "claimed",
    "transferred",
    "not_queued",
    "already_assigned",
    "staff_not_online",
    "at_capacity",
    "not_assigned",
    "same_staff",
]


@dataclass(frozen=True, slots=True)
class ClaimResult:
    ok: bool
    code: ClaimCode
    reason: str
    conversation_id: str
    staff_id: str | None = None  # who holds the conversation afterwards, when known


def claim_result(code: str, conversation_id: str, staff_id: str, detail: str = "") -> ClaimResult:
    """Turn a backend's outcome code into a ClaimResult with a sentence a person can read."""
    texts: dict[str, tuple[bool, str, str | None]] = {
        "claimed": (True, f"{staff_id} now has the conversation", staff_id),
        "transferred": (True, f"transferred to {staff_id}", staff_id),
        "not_queued": (False, "the conversation is not waiting in the queue", None),
        "already_assigned": (False, f"already taken by {detail}", detail or None),
        "staff_not_online": (False, f"{staff_id} is {detail or 'offline'}, not online", None),
        "at_capacity": (False, f"{staff_id} is at capacity ({detail} conversations)", None),
        "not_assigned": (
            False,
            f"the conversation is not assigned to the sender (assigned to {detail or 'nobody'})",
            detail or None,
        ),
        "same_staff": (False, f"the conversation is already with {staff_id}", staff_id),
    }
    ok, text, holder = texts[code]
    return ClaimResult(ok, code, text, conversation_id, holder)  # type: ignore[arg-type]


def check_presence_args(state: str, capacity: int) -> None:
    if state not in PRESENCE_STATES:
        raise ValueError(f"presence state must be one of {sorted(PRESENCE_STATES)}, not {state!r}")
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, not {capacity}")


def pick_least_loaded(candidates: list[StaffPresence]) -> StaffPresence | None:
    """Least load, then longest since the last assignment, then the smaller id."""
    free = [staff for staff in candidates if staff.has_free_capacity]
    if not free:
        return None
    return min(free, key=lambda s: (s.load, s.last_assigned_at, s.staff_id))


def encode_reasons(reasons: list[str]) -> str:
    return json.dumps(list(reasons), ensure_ascii=False)


class HandoffQueue(ABC):
    """The contract both backends implement (all methods are coroutine-safe)."""

    def __init__(
        self,
        *,
        presence_ttl_seconds: float = DEFAULT_PRESENCE_TTL_SECONDS,
        handle_time_history: int = DEFAULT_HANDLE_TIME_HISTORY,
        default_handle_seconds: float = DEFAULT_HANDLE_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        if presence_ttl_seconds <= 0:
            raise ValueError("presence_ttl_seconds must be > 0")
        self.presence_ttl_seconds = presence_ttl_seconds
        self.handle_time_history = max(1, handle_time_history)
        self.default_handle_seconds = default_handle_seconds
        self.clock = clock

    # ---------------------------------------------------------------- the queue

    @abstractmethod
    async def enqueue(self, entry: QueueEntry) -> int:
        """Queue a conversation; returns its 1-based position.

        Enqueuing a conversation that is already queued keeps its enqueued_at (its place
        in time) and never lowers its priority; one that is assigned to staff loses the
        assignment (it goes back to the queue).
        """

    @abstractmethod
    async def remove(self, conversation_id: str) -> bool:
        """Take a conversation out of the queue; False when it was not queued."""

    @abstractmethod
    async def entries(self) -> list[QueueEntry]:
        """The queue in serving order."""

    async def position(self, conversation_id: str) -> int | None:
        for index, entry in enumerate(await self.entries(), start=1):
            if entry.conversation_id == conversation_id:
                return index
        return None

    @abstractmethod
    async def record_handle_time(self, seconds: float) -> None:
        """Remember how long one handled conversation took (the last N are kept)."""

    @abstractmethod
    async def handle_times(self) -> list[float]: ...

    async def estimated_wait_seconds(self, position: int) -> float:
        """position × median handle time ÷ online staff with free capacity (at least 1)."""
        history = await self.handle_times()
        typical = statistics.median(history) if history else self.default_handle_seconds
        free_staff = sum(1 for staff in await self.online_staff() if staff.has_free_capacity)
        return max(0, position) * typical / max(1, free_staff)

    @abstractmethod
    async def overdue(self, now: float, sla_seconds: float) -> list[QueueEntry]:
        """Entries unannounced for sla_seconds or more: priority +1, announced_at = now."""

    # ---------------------------------------------------------------- presence

    @abstractmethod
    async def set_presence(self, staff_id: str, state: PresenceState, capacity: int) -> None: ...

    @abstractmethod
    async def heartbeat(self, staff_id: str) -> bool:
        """Keep presence alive; False when it had already expired (call set_presence)."""

    @abstractmethod
    async def presence(self, staff_id: str) -> StaffPresence:
        """Current presence; unknown or expired staff are offline with capacity 0."""

    @abstractmethod
    async def online_staff(self) -> list[StaffPresence]:
        """Staff whose presence is live and online, by staff id."""

    # ---------------------------------------------------------------- assignment

    @abstractmethod
    async def claim(self, conversation_id: str, staff_id: str) -> ClaimResult: ...

    @abstractmethod
    async def auto_assign(self, conversation_id: str) -> str | None: ...

    @abstractmethod
    async def release(self, conversation_id: str, staff_id: str | None = None) -> bool:
        """Unassign (close or return to bot); staff_id, when given, must be the holder."""

    @abstractmethod
    async def transfer(
        self, conversation_id: str, from_staff: str, to_staff: str
    ) -> ClaimResult: ...

    @abstractmethod
    async def load(self, staff_id: str) -> int: ...

    @abstractmethod
    async def assigned_to(self, conversation_id: str) -> str | None: ...

    async def close(self) -> None:  # noqa: B027  (optional hook; in process there is nothing)
        """Release connections (a no-op in process)."""


@dataclass(slots=True)
class _LivePresence:
    state: PresenceState
    capacity: int
    last_seen: float


class InProcessQueue(HandoffQueue):
    """One process, no persistence. No method awaits mid-update, so each one is atomic."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._entries: dict[str, QueueEntry] = {}
        self._assigned: dict[str, str] = {}
        self._presence: dict[str, _LivePresence] = {}
        self._last_assigned: dict[str, float] = {}
        self._handle_times: deque[float] = deque(maxlen=self.handle_time_history)

    # ---------------------------------------------------------------- the queue

    async def enqueue(self, entry: QueueEntry) -> int:
        conversation_id = entry.conversation_id
        self._assigned.pop(conversation_id, None)
        current = self._entries.get(conversation_id)
        if current is None:
            self._entries[conversation_id] = replace(entry, reasons=list(entry.reasons))
        else:
            self._entries[conversation_id] = replace(
                current,
                priority=max(current.priority, entry.priority),
                reasons=list(entry.reasons),
                customer_value=entry.customer_value,
                customer_label=entry.customer_label,
            )
        ordered = sorted(self._entries.values(), key=QueueEntry.sort_key)
        return next(i for i, e in enumerate(ordered, 1) if e.conversation_id == conversation_id)

    async def remove(self, conversation_id: str) -> bool:
        return self._entries.pop(conversation_id, None) is not None

    async def entries(self) -> list[QueueEntry]:
        return [replace(e) for e in sorted(self._entries.values(), key=QueueEntry.sort_key)]

    async def record_handle_time(self, seconds: float) -> None:
        self._handle_times.append(float(seconds))

    async def handle_times(self) -> list[float]:
        return list(self._handle_times)

    async def overdue(self, now: float, sla_seconds: float) -> list[QueueEntry]:
        due = []
        for entry in sorted(self._entries.values(), key=QueueEntry.sort_key):
            if now - (entry.announced_at or entry.enqueued_at) >= sla_seconds:
                entry.priority += 1
                entry.announced_at = now
                due.append(replace(entry))
        return sorted(due, key=QueueEntry.sort_key)

    # ---------------------------------------------------------------- presence

    def _live(self, staff_id: str) -> _LivePresence | None:
        live = self._presence.get(staff_id)
        if live is None:
            return None
        if self.clock() - live.last_seen > self.presence_ttl_seconds:
            del self._presence[staff_id]  # expired: the same as never having heartbeaten
            return None
        return live

    def _load(self, staff_id: str) -> int:
        return sum(1 for holder in self._assigned.values() if holder == staff_id)

    def _snapshot(self, staff_id: str) -> StaffPresence:
        live = self._live(staff_id)
        return StaffPresence(
            staff_id=staff_id,
            state=live.state if live else "offline",
            capacity=live.capacity if live else 0,
            last_seen=live.last_seen if live else None,
            load=self._load(staff_id),
            last_assigned_at=self._last_assigned.get(staff_id, 0.0),
        )

    async def set_presence(self, staff_id: str, state: PresenceState, capacity: int) -> None:
        check_presence_args(state, capacity)
        if state == "offline":
            self._presence.pop(staff_id, None)
        else:
            self._presence[staff_id] = _LivePresence(state, capacity, self.clock())

    async def heartbeat(self, staff_id: str) -> bool:
        live = self._live(staff_id)
        if live is None:
            return False
        live.last_seen = self.clock()
        return True

    async def presence(self, staff_id: str) -> StaffPresence:
        return self._snapshot(staff_id)

    async def online_staff(self) -> list[StaffPresence]:
        staff = [self._snapshot(staff_id) for staff_id in sorted(self._presence)]
        return [s for s in staff if s.state == "online"]

    # ---------------------------------------------------------------- assignment

    def _assign(self, conversation_id: str, staff_id: str) -> None:
        del self._entries[conversation_id]
        self._assigned[conversation_id] = staff_id
        self._last_assigned[staff_id] = self.clock()

    async def claim(self, conversation_id: str, staff_id: str) -> ClaimResult:
        if conversation_id not in self._entries:
            holder = self._assigned.get(conversation_id)
            if holder is not None:
                return claim_result("already_assigned", conversation_id, staff_id, holder)
            return claim_result("not_queued", conversation_id, staff_id)
        staff = self._snapshot(staff_id)
        if staff.state != "online":
            return claim_result("staff_not_online", conversation_id, staff_id, staff.state)
        if staff.load >= staff.capacity:
            detail = f"{staff.load}/{staff.capacity}"
            return claim_result("at_capacity", conversation_id, staff_id, detail)
        self._assign(conversation_id, staff_id)
        return claim_result("claimed", conversation_id, staff_id)

    async def auto_assign(self, conversation_id: str) -> str | None:
        if conversation_id not in self._entries:
            return None
        chosen = pick_least_loaded(await self.online_staff())
        if chosen is None:
            return None
        self._assign(conversation_id, chosen.staff_id)
        return chosen.staff_id

    async def release(self, conversation_id: str, staff_id: str | None = None) -> bool:
        holder = self._assigned.get(conversation_id)
        if holder is None or (staff_id is not None and holder != staff_id):
            return False
        del self._assigned[conversation_id]
        return True

    async def transfer(self, conversation_id: str, from_staff: str, to_staff: str) -> ClaimResult:
        holder = self._assigned.get(conversation_id)
        if holder != from_staff:
            return claim_result("not_assigned", conversation_id, from_staff, holder or "")
        if from_staff == to_staff:
            return claim_result("same_staff", conversation_id, to_staff)
        target = self._snapshot(to_staff)
        if target.state != "online":
            return claim_result("staff_not_online", conversation_id, to_staff, target.state)
        if target.load >= target.capacity:
            detail = f"{target.load}/{target.capacity}"
            return claim_result("at_capacity", conversation_id, to_staff, detail)
        self._assigned[conversation_id] = to_staff
        self._last_assigned[to_staff] = self.clock()
        return claim_result("transferred", conversation_id, to_staff)

    async def load(self, staff_id: str) -> int:
        return self._load(staff_id)

    async def assigned_to(self, conversation_id: str) -> str | None:
        return self._assigned.get(conversation_id)
