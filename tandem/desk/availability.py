"""Whether a person can take a chat now: decided here, once, for the gateway and the bot's words.

Opening hours (business.yml), `STAFF_HOURS` (business: only while the shop is open;
always: whenever someone is online) and staff presence all meet in `Availability.now`.
The Rasa actions say no availability words of their own: the desk says them after
asking this service, so the customer is never told "we're closed" and then queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from handoff.queue import HandoffQueue
from tandem.business.profile import BusinessProfile


@dataclass(frozen=True)
class Availability:
    available: bool
    why: str = ""  # for the customer, when nobody can take the chat
    after_hours: bool = False  # closed by the shop's hours (the reply comes when it opens)


class AvailabilityService:
    def __init__(
        self,
        queue: HandoffQueue,
        profile: Callable[[], BusinessProfile],
        *,
        staff_hours: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.queue = queue
        self.profile = profile
        self.staff_hours = staff_hours
        self.clock = clock

    async def now(self) -> Availability:
        """Only a closed shop quotes when it opens again: while open, "we're back today at
        10 AM" would be wrong (it is past 10), so an empty desk just says nobody is free."""
        profile = self.profile()
        now = self.clock()
        if self.staff_hours == "business" and not profile.is_open_at(now):
            why = profile.say("handoff_offline_after_hours", next_opening=profile.reopening(now))
            return Availability(False, why, after_hours=True)
        if not await self.queue.online_staff():
            return Availability(False, profile.say("handoff_offline_no_staff"))
        return Availability(True)
