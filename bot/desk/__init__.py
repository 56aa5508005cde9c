"""The gateway's handoff desk: policy signals, escalation, the queue and staff actions.

`ChatFlows` (bot/flows.py) calls in after each customer turn; the staff API
(bot/staff_views.py) calls the staff actions. This package wires the handoff library
(policy, queue), the sentiment Mood, storage and the bus together; it has no HTTP code.
`HandoffDesk` is put together from one mixin per module, all built on `CoreDesk`
(bot/desk/core.py): escalation, offline, staff_actions, views, housekeeping.

Bus events:
- conversation topic (the customer's widget): `message` frames, and `queue` frames with
  the position and expected wait whenever the queue changes (not stored);
- the `staff` topic (/ws/staff): `escalation`, `queue_changed`, `customer_message`,
  `staff_message`, `note`, `ticket`, `sla_overdue`.

State lives in the database and the queue; events only say "look again" (at most once).
"""

from __future__ import annotations

from bot.desk.core import STAFF_TOPIC, CoreDesk, DeskError, StaffRef, handoff_data
from bot.desk.escalation import (
    EscalationMixin,
    assess_turn,
    carries_mood,
    customer_value,
    fold_late_score,
    mood_scores,
    record_sentiment,
    update_mood,
)
from bot.desk.housekeeping import HousekeepingMixin
from bot.desk.offline import (
    OfflineMixin,
    OfflineStep,
    find_email,
    is_opt_out,
    looks_like_question,
    parse_name,
)
from bot.desk.staff_actions import StaffActionsMixin
from bot.desk.views import ViewsMixin, staff_message_view, summarize


class HandoffDesk(EscalationMixin, OfflineMixin, StaffActionsMixin, ViewsMixin, HousekeepingMixin):
    """The whole desk: `CoreDesk` plus every part of it (see the module docstring)."""


__all__ = [
    "STAFF_TOPIC",
    "CoreDesk",
    "DeskError",
    "HandoffDesk",
    "OfflineStep",
    "StaffRef",
    "assess_turn",
    "carries_mood",
    "customer_value",
    "find_email",
    "fold_late_score",
    "handoff_data",
    "is_opt_out",
    "looks_like_question",
    "mood_scores",
    "parse_name",
    "record_sentiment",
    "staff_message_view",
    "summarize",
    "update_mood",
]
