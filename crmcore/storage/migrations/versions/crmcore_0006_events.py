"""crmcore: the transactional outbox (crm_events) and relay cursors.

Revision ID: crmcore_0006
Revises: crmcore_0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, UTCDateTime

revision = "crmcore_0006"
down_revision = "crmcore_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_events",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("position", sa.BigInteger),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("items", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_events"),
        sa.UniqueConstraint("event_id", name="uq_crm_events_event_id"),
        sa.UniqueConstraint("position", name="uq_crm_events_position"),
    )
    op.create_index("ix_crm_events_type", "crm_events", ["type"])
    op.create_table(
        "crm_event_cursors",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_crm_event_cursors"),
    )


def downgrade() -> None:
    op.drop_table("crm_event_cursors")
    op.drop_index("ix_crm_events_type", table_name="crm_events")
    op.drop_table("crm_events")
