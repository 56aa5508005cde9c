"""conversation capability token (only its sha256 is stored) and client tag

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Conversations from before have no token: the customer API refuses them (404), so an
    # old id alone no longer opens a transcript.
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("client_tag", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("client_tag")
        batch.drop_column("token_hash")
