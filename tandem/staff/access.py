"""Who on the staff may see a conversation's personal data, and the record of each look.

The rule: contact details and the unmasked transcript go to the member who holds the
conversation (it is assigned to them) and to the owner. Everyone else on the staff sees a
masked transcript without contact details (enough to decide to claim it). Notes follow the
same rule. Each look at personal data is written to the audit log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.conversations.models import Conversation
from tandem.db import utcnow
from tandem.staff.models import AuditLog
from tandem.staff.service import record_audit

VIEWED = "conversation.personal_data_viewed"
# The console reloads an open conversation on every message: one audit row per member
# and conversation in this window stands for one look, not one row per reload.
VIEW_WINDOW = timedelta(minutes=10)


class Viewer(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_owner(self) -> bool: ...


def can_see_personal_data(staff: Viewer, conversation: Conversation) -> bool:
    """The owner, or the staff member the conversation is assigned to."""
    return staff.is_owner or (
        conversation.assigned_staff_id is not None and conversation.assigned_staff_id == staff.id
    )


def can_add_note(staff: Viewer, conversation: Conversation) -> bool:
    return can_see_personal_data(staff, conversation)


def record_view(session: Session, staff: Viewer, conversation: Conversation) -> bool:
    """Audit one look at a conversation's personal data; False when already recorded lately."""
    recent = session.scalar(
        select(AuditLog.id)
        .where(
            AuditLog.action == VIEWED,
            AuditLog.actor_user_id == staff.id,
            AuditLog.target == conversation.id,
            AuditLog.created_at >= utcnow() - VIEW_WINDOW,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    record_audit(
        session,
        staff.id,
        VIEWED,
        target=conversation.id,
        detail={
            "customer_id": conversation.customer_id,
            "as": "owner" if staff.is_owner else "holder",
        },
    )
    return True
