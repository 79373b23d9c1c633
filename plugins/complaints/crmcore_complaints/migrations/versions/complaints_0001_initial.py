"""complaints plugin: cases, history, compensations, breaches.

Revision ID: complaints_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "complaints_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("complaints",)
depends_on = "crmcore_0001"


def _complaint_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["complaint_id"],
        ["complaints_cases.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_complaint_id_complaints_cases",
    )


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"],
        ["crm_customers.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_customer_id_crm_customers",
    )


def upgrade() -> None:
    """Create the four tables of the plugin and their indexes."""
    op.create_table(
        "complaints_cases",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("customer_id", IdType),
        sa.Column("interaction_id", IdType),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(30), nullable=False),
        sa.Column("reference", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("source_ref", sa.String(200)),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("assignee", sa.String(200)),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("first_response_target_seconds", sa.Integer, nullable=False),
        sa.Column("resolution_target_seconds", sa.Integer, nullable=False),
        sa.Column("first_response_due_at", UTCDateTime, nullable=False),
        sa.Column("first_response_at", UTCDateTime),
        sa.Column("first_response_seconds", sa.Integer),
        sa.Column(
            "resolution_accrued_seconds", sa.Integer, nullable=False, server_default=sa.text("0")
        ),
        sa.Column("resolution_running_since", UTCDateTime),
        sa.Column("resolution_due_at", UTCDateTime),
        sa.Column("resolution_seconds", sa.Integer),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("resolution", sa.Text),
        sa.Column("root_cause", sa.String(200)),
        sa.Column("rating", sa.Integer),
        sa.Column("rated_at", UTCDateTime),
        sa.Column("reopen_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("recurrence_of", IdType),
        sa.Column("first_response_breached", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("resolution_breached", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_complaints_cases"),
        _customer_fk("complaints_cases"),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["crm_interactions.id"],
            ondelete="SET NULL",
            name="fk_complaints_cases_interaction_id_crm_interactions",
        ),
        sa.UniqueConstraint("source", "source_ref", name="uq_complaints_cases_source_ref"),
    )
    op.create_index(
        "ix_complaints_cases_customer_category",
        "complaints_cases",
        ["customer_id", "category", "opened_at"],
    )
    for column in (
        "opened_at",
        "state",
        "assignee",
        "first_response_due_at",
        "resolution_due_at",
        "resolved_at",
    ):
        op.create_index(f"ix_complaints_cases_{column}", "complaints_cases", [column])

    op.create_table(
        "complaints_history",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("complaint_id", IdType, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_value", sa.String(200)),
        sa.Column("to_value", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaints_history"),
        _complaint_fk("complaints_history"),
    )
    op.create_index(
        "ix_complaints_history_complaint_id", "complaints_history", ["complaint_id", "id"]
    )
    op.create_index("ix_complaints_history_action_at", "complaints_history", ["action", "at"])

    op.create_table(
        "complaints_compensations",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("complaint_id", IdType, nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("points", sa.Integer),
        sa.Column("amount", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("reason", sa.Text),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("refund_interaction_id", IdType),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_complaints_compensations"),
        _complaint_fk("complaints_compensations"),
        _customer_fk("complaints_compensations"),
        sa.UniqueConstraint("idempotency_key", name="uq_complaints_compensations_idempotency_key"),
    )
    op.create_index(
        "ix_complaints_compensations_complaint_id", "complaints_compensations", ["complaint_id"]
    )

    op.create_table(
        "complaints_breaches",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("complaint_id", IdType, nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("detected_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaints_breaches"),
        _complaint_fk("complaints_breaches"),
        _customer_fk("complaints_breaches"),
        sa.UniqueConstraint(
            "complaint_id", "target", name="uq_complaints_breaches_complaint_target"
        ),
    )
    op.create_index("ix_complaints_breaches_detected_at", "complaints_breaches", ["detected_at"])


def downgrade() -> None:
    """Drop the plugin's tables."""
    for table in (
        "complaints_breaches",
        "complaints_compensations",
        "complaints_history",
        "complaints_cases",
    ):
        op.drop_table(table)
