"""loyalty plugin: members, ledger, lots, allocations, tier changes.

Revision ID: loyalty_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "loyalty_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("loyalty",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    """Create the loyalty tables."""
    op.create_table(
        "loyalty_members",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("member_number", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("joined_at", UTCDateTime, nullable=False),
        sa.Column("left_at", UTCDateTime),
        sa.Column("channel", sa.String(30)),
        sa.Column("referred_by", IdType),
        sa.Column("tier", sa.String(60)),
        sa.Column("tier_since", UTCDateTime),
        sa.PrimaryKeyConstraint("customer_id", name="pk_loyalty_members"),
        sa.UniqueConstraint("member_number", name="uq_loyalty_members_member_number"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_loyalty_members_customer_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["referred_by"],
            ["crm_customers.id"],
            ondelete="SET NULL",
            name="fk_loyalty_members_referred_by_crm_customers",
        ),
    )
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("customer_id", IdType),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("interaction_id", sa.BigInteger),
        sa.Column("purchase_id", sa.BigInteger),
        sa.Column("amount", Money),
        sa.Column("reason", sa.Text),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("actor", sa.String(200)),
        sa.Column("details", JSONDocument),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_ledger"),
        sa.UniqueConstraint("idempotency_key", name="uq_loyalty_ledger_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_loyalty_ledger_customer_id_crm_customers",
        ),
    )
    op.create_index(
        "ix_loyalty_ledger_customer_time", "loyalty_ledger", ["customer_id", "occurred_at"]
    )
    op.create_index("ix_loyalty_ledger_purchase_id", "loyalty_ledger", ["purchase_id"])
    op.create_index("ix_loyalty_ledger_kind_time", "loyalty_ledger", ["kind", "occurred_at"])
    op.create_table(
        "loyalty_lots",
        sa.Column("id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("earned_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_lots"),
        sa.ForeignKeyConstraint(
            ["id"],
            ["loyalty_ledger.id"],
            ondelete="CASCADE",
            name="fk_loyalty_lots_id_loyalty_ledger",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_loyalty_lots_customer_id_crm_customers",
        ),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= points", name="ck_loyalty_lots_remaining"
        ),
    )
    op.create_index("ix_loyalty_lots_customer_earned", "loyalty_lots", ["customer_id", "earned_at"])
    op.create_index("ix_loyalty_lots_expires_at", "loyalty_lots", ["expires_at"])
    op.create_table(
        "loyalty_allocations",
        sa.Column("entry_id", IdType, nullable=False),
        sa.Column("lot_id", IdType, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "lot_id", name="pk_loyalty_allocations"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["loyalty_ledger.id"],
            ondelete="CASCADE",
            name="fk_loyalty_allocations_entry_id_loyalty_ledger",
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["loyalty_lots.id"],
            ondelete="CASCADE",
            name="fk_loyalty_allocations_lot_id_loyalty_lots",
        ),
    )
    op.create_table(
        "loyalty_tier_changes",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("from_tier", sa.String(60)),
        sa.Column("to_tier", sa.String(60)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_tier_changes"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_loyalty_tier_changes_customer_id_crm_customers",
        ),
    )
    op.create_index("ix_loyalty_tier_changes_customer_id", "loyalty_tier_changes", ["customer_id"])


def downgrade() -> None:
    """Drop the loyalty tables."""
    for table in (
        "loyalty_tier_changes",
        "loyalty_allocations",
        "loyalty_lots",
        "loyalty_ledger",
        "loyalty_members",
    ):
        op.drop_table(table)
