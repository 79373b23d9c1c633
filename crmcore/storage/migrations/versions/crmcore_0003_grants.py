"""crmcore: per-customer access grants.

Revision ID: crmcore_0003
Revises: crmcore_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType

revision = "crmcore_0003"
down_revision = "crmcore_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_customer_grants",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "user", name="pk_crm_customer_grants"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_crm_customer_grants_customer_id_crm_customers",
        ),
    )


def downgrade() -> None:
    op.drop_table("crm_customer_grants")
