"""segmentation plugin: segments, members, membership history, churn alerts, customer costs.

Revision ID: segmentation_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "segmentation_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("segmentation",)
depends_on = "crmcore_0001"


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"],
        ["crm_customers.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_customer_id_crm_customers",
    )


def _segment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["segment_id"],
        ["segmentation_segments.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_segment_id_segmentation_segments",
    )


def upgrade() -> None:
    """Create the plugin's five tables."""
    op.create_table(
        "segmentation_segments",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("rule", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("refreshed_at", UTCDateTime),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segmentation_segments"),
        sa.UniqueConstraint("key", name="uq_segmentation_segments_key"),
    )
    op.create_table(
        "segmentation_members",
        sa.Column("segment_id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("joined_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "customer_id", name="pk_segmentation_members"),
        _segment_fk("segmentation_members"),
        _customer_fk("segmentation_members"),
    )
    op.create_index("ix_segmentation_members_customer_id", "segmentation_members", ["customer_id"])
    op.create_table(
        "segmentation_history",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("segment_id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("joined", sa.Boolean, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segmentation_history"),
        _segment_fk("segmentation_history"),
        _customer_fk("segmentation_history"),
    )
    op.create_index(
        "ix_segmentation_history_customer_id",
        "segmentation_history",
        ["customer_id"],
    )
    op.create_index(
        "ix_segmentation_history_segment_at",
        "segmentation_history",
        ["segment_id", "at"],
    )
    op.create_table(
        "segmentation_churn_alerts",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", JSONDocument, nullable=False),
        sa.Column("moved", sa.Boolean, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segmentation_churn_alerts"),
        _customer_fk("segmentation_churn_alerts"),
    )
    op.create_index(
        "ix_segmentation_churn_alerts_customer_id", "segmentation_churn_alerts", ["customer_id"]
    )
    op.create_index("ix_segmentation_churn_alerts_at", "segmentation_churn_alerts", ["at"])
    op.create_table(
        "segmentation_customer_costs",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("acquisition", Money),
        sa.Column("service", Money),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_segmentation_customer_costs"),
        _customer_fk("segmentation_customer_costs"),
    )


def downgrade() -> None:
    """Drop the plugin's tables."""
    for name in (
        "segmentation_customer_costs",
        "segmentation_churn_alerts",
        "segmentation_history",
        "segmentation_members",
        "segmentation_segments",
    ):
        op.drop_table(name)
