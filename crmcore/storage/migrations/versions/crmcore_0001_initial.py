"""crmcore: customers, tags, interactions, lifecycle events.

Revision ID: crmcore_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "crmcore_0001"
down_revision = None
branch_labels = ("crmcore",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_customers",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_norm", sa.String(300), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("email_norm", sa.String(320)),
        sa.Column("phone", sa.String(50)),
        sa.Column("phone_norm", sa.String(50)),
        sa.Column("address", sa.Text),
        sa.Column("gender", sa.String(20)),
        sa.Column("birth_date", sa.Date),
        sa.Column("company_name", sa.String(300)),
        sa.Column("org_norm", sa.String(300)),
        sa.Column("industry", sa.String(200)),
        sa.Column("size", sa.Integer),
        sa.Column("registered_capital", Money),
        sa.Column("founding_date", sa.Date),
        sa.Column("owner", sa.String(200)),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("source_channel", sa.String(30)),
        sa.Column("attributes", JSONDocument, nullable=False),
        sa.Column("consent_marketing_email", sa.Boolean, nullable=False),
        sa.Column("consent_marketing_sms", sa.Boolean, nullable=False),
        sa.Column("consent_marketing_phone", sa.Boolean, nullable=False),
        sa.Column("consent_surveys", sa.Boolean, nullable=False),
        sa.Column("consent_data_processing", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_customers"),
        sa.UniqueConstraint("email_norm", name="uq_crm_customers_email_norm"),
        sa.UniqueConstraint("phone_norm", name="uq_crm_customers_phone_norm"),
        sa.UniqueConstraint("org_norm", name="uq_crm_customers_org_norm"),
    )
    op.create_index("ix_crm_customers_name_norm", "crm_customers", ["name_norm"])
    op.create_index("ix_crm_customers_owner", "crm_customers", ["owner"])
    op.create_index("ix_crm_customers_stage", "crm_customers", ["stage"])
    op.create_index("ix_crm_customers_created_at", "crm_customers", ["created_at"])

    op.create_table(
        "crm_customer_tags",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "tag", name="pk_crm_customer_tags"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_crm_customer_tags_customer_id_crm_customers",
        ),
    )
    op.create_index("ix_crm_customer_tags_tag", "crm_customer_tags", ["tag"])

    op.create_table(
        "crm_interactions",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(30), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("amount", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("items", JSONDocument, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.Column("handled_by", sa.String(200)),
        sa.Column("response_seconds", sa.Float),
        sa.PrimaryKeyConstraint("id", name="pk_crm_interactions"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_crm_interactions_customer_id_crm_customers",
        ),
    )
    op.create_index(
        "ix_crm_interactions_customer_time", "crm_interactions", ["customer_id", "occurred_at"]
    )
    op.create_index("ix_crm_interactions_kind_time", "crm_interactions", ["kind", "occurred_at"])

    op.create_table(
        "crm_lifecycle_events",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("from_stage", sa.String(20)),
        sa.Column("to_stage", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(200)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_lifecycle_events"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_crm_lifecycle_events_customer_id_crm_customers",
        ),
    )
    op.create_index("ix_crm_lifecycle_events_customer_id", "crm_lifecycle_events", ["customer_id"])


def downgrade() -> None:
    op.drop_table("crm_lifecycle_events")
    op.drop_table("crm_interactions")
    op.drop_table("crm_customer_tags")
    op.drop_table("crm_customers")
