"""crmcore: audit log.

Revision ID: crmcore_0002
Revises: crmcore_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, UTCDateTime

revision = "crmcore_0002"
down_revision = "crmcore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_audit_log",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("entity_id", sa.BigInteger),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_audit_log"),
    )
    op.create_index("ix_crm_audit_log_at", "crm_audit_log", ["at"])
    op.create_index("ix_crm_audit_log_actor", "crm_audit_log", ["actor"])
    op.create_index("ix_crm_audit_log_customer_id", "crm_audit_log", ["customer_id"])


def downgrade() -> None:
    op.drop_table("crm_audit_log")
