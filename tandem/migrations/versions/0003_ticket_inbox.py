"""ticket inbox: assignment, resolution and the reply log

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tandem.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_staff_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_at", tandem.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("resolved_at", tandem.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tickets_assigned_staff_id"), ["assigned_staff_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_assigned_staff_id_staff_users"),
            "staff_users",
            ["assigned_staff_id"],
            ["id"],
            ondelete="SET NULL",
        )
    # "resolved" was the desk's word for a ticket whose conversation was closed.
    op.execute(
        "UPDATE tickets SET status = 'done', resolved_at = updated_at WHERE status = 'resolved'"
    )
    op.create_table(
        "ticket_replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("created_at", tandem.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_ticket_replies_staff_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_replies_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_replies")),
    )
    with op.batch_alter_table("ticket_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_replies_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_replies_ticket_id"))
    op.drop_table("ticket_replies")
    op.execute("UPDATE tickets SET status = 'resolved' WHERE status = 'done'")
    op.execute("UPDATE tickets SET status = 'open' WHERE status = 'in_progress'")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tickets_assigned_staff_id_staff_users"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_tickets_assigned_staff_id"))
        batch_op.drop_column("resolution")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("assigned_staff_id")
