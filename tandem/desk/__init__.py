"""The handoff desk as a service: escalation, the queue, offline tickets and staff actions.

No HTTP here: refusals are domain errors (`tandem.desk.errors`) that the views map to
status codes. State changes go through the named moves of
`tandem.conversations.transitions`; what they tell the world goes out through the one
`Publisher` after each commit. `HandoffDesk` is put together from one mixin per module,
all built on `CoreDesk`: escalation, offline, staff_actions, views, housekeeping.

Bus events:
- conversation topic (the customer's widget): `message` frames, `typing`, and `queue`
  frames with the position and expected wait whenever the queue changes (not stored);
- the `staff` topic (/ws/staff): `escalation`, `queue_changed`, `customer_message`,
  `staff_message`, `note`, `ticket`, `sla_overdue`.

State lives in the database and the queue; events only say "look again" (at most once).
"""

from __future__ import annotations

from tandem.desk.availability import Availability, AvailabilityService
from tandem.desk.core import CoreDesk
from tandem.desk.errors import Conflict, DeskError, InvalidRequest, NotHolder
from tandem.desk.escalation import EscalationMixin
from tandem.desk.housekeeping import HousekeepingMixin
from tandem.desk.offline import OfflineMixin, OfflineStep
from tandem.desk.staff_actions import StaffActionsMixin
from tandem.desk.views import ViewsMixin


class HandoffDesk(EscalationMixin, OfflineMixin, StaffActionsMixin, ViewsMixin, HousekeepingMixin):
    """The whole desk: `CoreDesk` plus every part of it (see the module docstring)."""


__all__ = [
    "Availability",
    "AvailabilityService",
    "Conflict",
    "CoreDesk",
    "DeskError",
    "HandoffDesk",
    "InvalidRequest",
    "NotHolder",
    "OfflineStep",
]
