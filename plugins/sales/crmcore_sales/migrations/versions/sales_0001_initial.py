"""sales plugin: deals, contacts, items, history, contracts, instalments, payments, targets.

Revision ID: sales_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "sales_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("sales",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    """Create the plugin's tables and their indexes."""
    op.create_table(
        "sales_deals",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("customer_id", IdType),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("probability", sa.Integer, nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close", sa.Date, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("channel", sa.String(40)),
        sa.Column("campaign_id", sa.String(100)),
        sa.Column("next_step", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("reason", sa.String(40)),
        sa.Column("competitor", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("stage_changed_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("reopen_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("id", name="pk_sales_deals"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_sales_deals_customer_id_crm_customers",
        ),
    )
    op.create_index("ix_sales_deals_owner", "sales_deals", ["owner"])
    op.create_index("ix_sales_deals_customer_id", "sales_deals", ["customer_id"])
    op.create_index("ix_sales_deals_status_close", "sales_deals", ["status", "expected_close"])
    op.create_index("ix_sales_deals_closed_at", "sales_deals", ["closed_at"])
    op.create_table(
        "sales_deal_contacts",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("deal_id", IdType, nullable=False),
        sa.Column("contact_id", IdType),
        sa.Column("role", sa.String(40)),
        sa.PrimaryKeyConstraint("id", name="pk_sales_deal_contacts"),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["sales_deals.id"],
            ondelete="CASCADE",
            name="fk_sales_deal_contacts_deal_id_sales_deals",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_sales_deal_contacts_contact_id_crm_customers",
        ),
        sa.UniqueConstraint("deal_id", "contact_id", name="uq_sales_deal_contacts_deal_contact"),
    )
    op.create_index("ix_sales_deal_contacts_contact_id", "sales_deal_contacts", ["contact_id"])
    op.create_table(
        "sales_deal_items",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("deal_id", IdType, nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", Money, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sales_deal_items"),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["sales_deals.id"],
            ondelete="CASCADE",
            name="fk_sales_deal_items_deal_id_sales_deals",
        ),
    )
    op.create_index("ix_sales_deal_items_deal_id", "sales_deal_items", ["deal_id"])
    op.create_table(
        "sales_deal_history",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("deal_id", IdType, nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("old", sa.String(200)),
        sa.Column("new", sa.String(200)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_sales_deal_history"),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["sales_deals.id"],
            ondelete="CASCADE",
            name="fk_sales_deal_history_deal_id_sales_deals",
        ),
    )
    op.create_index("ix_sales_deal_history_deal_id", "sales_deal_history", ["deal_id", "id"])
    op.create_index("ix_sales_deal_history_field_at", "sales_deal_history", ["field", "at"])
    op.create_table(
        "sales_contracts",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("deal_id", IdType),
        sa.Column("customer_id", IdType),
        sa.Column("value", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("renewal_date", sa.Date),
        sa.Column("payment_terms_days", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("renewal_notified_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_sales_contracts"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_sales_contracts_customer_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["sales_deals.id"],
            ondelete="SET NULL",
            name="fk_sales_contracts_deal_id_sales_deals",
        ),
    )
    op.create_index("ix_sales_contracts_renewal_date", "sales_contracts", ["renewal_date"])
    op.create_index("ix_sales_contracts_customer_id", "sales_contracts", ["customer_id"])
    op.create_table(
        "sales_instalments",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("contract_id", IdType, nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("overdue_notified_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_sales_instalments"),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["sales_contracts.id"],
            ondelete="CASCADE",
            name="fk_sales_instalments_contract_id_sales_contracts",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_sales_instalments_customer_id_crm_customers",
        ),
        sa.UniqueConstraint("contract_id", "seq", name="uq_sales_instalments_contract_seq"),
    )
    op.create_index("ix_sales_instalments_due_date", "sales_instalments", ["due_date"])
    op.create_table(
        "sales_payments",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("contract_id", IdType, nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("amount", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("received_on", sa.Date, nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("interaction_id", IdType),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sales_payments"),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["crm_interactions.id"],
            ondelete="SET NULL",
            name="fk_sales_payments_interaction_id_crm_interactions",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_sales_payments_customer_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["sales_contracts.id"],
            ondelete="CASCADE",
            name="fk_sales_payments_contract_id_sales_contracts",
        ),
        sa.UniqueConstraint("reference", name="uq_sales_payments_reference"),
    )
    op.create_index("ix_sales_payments_contract_id", "sales_payments", ["contract_id"])
    op.create_index("ix_sales_payments_received_on", "sales_payments", ["received_on"])
    op.create_table(
        "sales_targets",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("owner", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sales_targets"),
        sa.UniqueConstraint(
            "owner", "team", "period_start", "period_end", name="uq_sales_targets_who_period"
        ),
    )


def downgrade() -> None:
    """Drop the plugin's tables, children first."""
    for table in (
        "sales_targets",
        "sales_payments",
        "sales_instalments",
        "sales_contracts",
        "sales_deal_history",
        "sales_deal_items",
        "sales_deal_contacts",
        "sales_deals",
    ):
        op.drop_table(table)
