"""messaging plugin: the partial index of waiting messages, in claim order.

Revision ID: messaging_0002
Revises: messaging_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "messaging_0002"
down_revision = "messaging_0001"
branch_labels = None
depends_on = None

_PENDING = sa.text("state IN ('queued', 'deferred')")


def upgrade() -> None:
    """Index (not_before, id) of the queued and deferred messages only."""
    op.create_index(
        "ix_messaging_messages_pending",
        "messaging_messages",
        ["not_before", "id"],
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_messaging_messages_pending", table_name="messaging_messages")
