"""campaigns plugin: campaigns, their frozen recipients and the messages asked for.

Revision ID: campaigns_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "campaigns_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("campaigns",)
depends_on = "crmcore_0001"


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"],
        ["crm_customers.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_customer_id_crm_customers",
    )


def _campaign_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"],
        ["campaigns_campaigns.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_campaign_id_campaigns_campaigns",
    )


def upgrade() -> None:
    """Create the plugin's tables and their indexes."""
    op.create_table(
        "campaigns_campaigns",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("audience", JSONDocument, nullable=False),
        sa.Column("variants", JSONDocument, nullable=False),
        sa.Column("channel", sa.String(40)),
        sa.Column("control_share", Money, nullable=False),
        sa.Column("stratify", sa.Boolean, nullable=False),
        sa.Column("seed", sa.BigInteger),
        sa.Column("budget", Money),
        sa.Column("cost_per_message", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("margin", Money, nullable=False),
        sa.Column("attribution_days", sa.Integer, nullable=False),
        sa.Column("send_at", UTCDateTime),
        sa.Column("reminder_days", sa.Integer),
        sa.Column("audience_size", sa.Integer),
        sa.Column("launched_at", UTCDateTime),
        sa.Column("first_send_at", UTCDateTime),
        sa.Column("reminder_status", sa.String(20)),
        sa.Column("reminded_at", UTCDateTime),
        sa.Column("stopped_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("launched_by", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns_campaigns"),
    )
    op.create_table(
        "campaigns_recipients",
        sa.Column("campaign_id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("grp", sa.String(10), nullable=False),
        sa.Column("variant", sa.String(40)),
        sa.Column("stratum", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("assigned_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id", name="pk_campaigns_recipients"),
        _campaign_fk("campaigns_recipients"),
        _customer_fk("campaigns_recipients"),
    )
    op.create_index("ix_campaigns_recipients_customer_id", "campaigns_recipients", ["customer_id"])
    op.create_table(
        "campaigns_sends",
        sa.Column("campaign_id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("message_id", IdType),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id", "step", name="pk_campaigns_sends"),
        _campaign_fk("campaigns_sends"),
        _customer_fk("campaigns_sends"),
    )
    op.create_index("ix_campaigns_sends_customer_id", "campaigns_sends", ["customer_id"])


def downgrade() -> None:
    """Drop the plugin's tables."""
    op.drop_table("campaigns_sends")
    op.drop_table("campaigns_recipients")
    op.drop_table("campaigns_campaigns")
