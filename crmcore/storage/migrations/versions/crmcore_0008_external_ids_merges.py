"""crmcore: customers' ids in other systems, and tombstones of merged customers.

``crm_customer_external_ids`` holds (system, external id) -> customer, one
customer per pair; imports match on it (``--match external_id``) and
``crm.customers.get_by_external_id`` reads it. ``crm_customer_merges`` keeps,
for each customer merged into another, the id it now resolves to.

Revision ID: crmcore_0008
Revises: crmcore_0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, UTCDateTime

revision = "crmcore_0008"
down_revision = "crmcore_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_customer_external_ids",
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("system", "external_id", name="pk_crm_customer_external_ids"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            name="fk_crm_customer_external_ids_customer_id_crm_customers",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_crm_customer_external_ids_customer_id", "crm_customer_external_ids", ["customer_id"]
    )
    op.create_table(
        "crm_customer_merges",
        sa.Column("merged_id", sa.BigInteger, nullable=False),
        sa.Column("kept_id", IdType, nullable=False),
        sa.Column("merged_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.PrimaryKeyConstraint("merged_id", name="pk_crm_customer_merges"),
        sa.ForeignKeyConstraint(
            ["kept_id"],
            ["crm_customers.id"],
            name="fk_crm_customer_merges_kept_id_crm_customers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_crm_customer_merges_kept_id", "crm_customer_merges", ["kept_id"])


def downgrade() -> None:
    op.drop_index("ix_crm_customer_merges_kept_id", table_name="crm_customer_merges")
    op.drop_table("crm_customer_merges")
    op.drop_index(
        "ix_crm_customer_external_ids_customer_id", table_name="crm_customer_external_ids"
    )
    op.drop_table("crm_customer_external_ids")
