"""activities plugin: rules and activities.

Revision ID: activities_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, UTCDateTime

revision = "activities_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("activities",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    """Create the plugin's tables and their indexes."""
    op.create_table(
        "activities_rules",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        sa.Column("targets", JSONDocument, nullable=False),
        sa.Column("assign", sa.String(250), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("planned_through", sa.Date),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_activities_rules"),
        sa.UniqueConstraint("name", name="uq_activities_rules_name"),
    )
    op.create_table(
        "activities_activities",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("contact_id", IdType),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("assignee", sa.String(200)),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("duration_minutes", sa.Integer),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("ref_type", sa.String(60)),
        sa.Column("ref_id", sa.String(100)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("rule_id", IdType),
        sa.Column("occurrence", sa.Date),
        sa.Column("followup_key", sa.String(200)),
        sa.Column("remind_at", UTCDateTime),
        sa.Column("reminded_at", UTCDateTime),
        sa.Column("interaction_id", IdType),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_activities_activities"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_activities_activities_customer_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["crm_customers.id"],
            ondelete="SET NULL",
            name="fk_activities_activities_contact_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["activities_rules.id"],
            ondelete="SET NULL",
            name="fk_activities_activities_rule_id_activities_rules",
        ),
        sa.UniqueConstraint("followup_key", name="uq_activities_activities_followup_key"),
        sa.UniqueConstraint(
            "rule_id",
            "occurrence",
            "customer_id",
            name="uq_activities_activities_rule_occurrence_customer",
        ),
    )
    op.create_index(
        "ix_activities_activities_assignee_status_due",
        "activities_activities",
        ["assignee", "status", "due_at"],
    )
    op.create_index(
        "ix_activities_activities_customer_id", "activities_activities", ["customer_id"]
    )
    op.create_index(
        "ix_activities_activities_status_remind", "activities_activities", ["status", "remind_at"]
    )


def downgrade() -> None:
    """Drop the plugin's tables."""
    op.drop_table("activities_activities")
    op.drop_table("activities_rules")
