"""example plugin: the example_touches table, backfilled from core's data.

Revision ID: example_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, UTCDateTime

revision = "example_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("example",)
depends_on = "crmcore_0001"

CustomerId = IdType


def upgrade() -> None:
    """Create example_touches with one row per existing customer."""
    op.create_table(
        "example_touches",
        sa.Column("customer_id", CustomerId, nullable=False),
        sa.Column("touches", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_touch_at", UTCDateTime),
        sa.Column("moves", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("updates", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("customer_id", name="pk_example_touches"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_example_touches_customer_id_crm_customers",
        ),
    )
    # Installed on a database that already has customers: count what is there.
    op.execute(
        """
        INSERT INTO example_touches (customer_id, touches, last_touch_at, moves, updates)
        SELECT c.id,
               (SELECT count(*) FROM crm_interactions i WHERE i.customer_id = c.id),
               (SELECT max(i.occurred_at) FROM crm_interactions i WHERE i.customer_id = c.id),
               (SELECT count(*) FROM crm_lifecycle_events e
                 WHERE e.customer_id = c.id AND e.from_stage IS NOT NULL),
               0
        FROM crm_customers c
        """
    )


def downgrade() -> None:
    """Drop example_touches."""
    op.drop_table("example_touches")
