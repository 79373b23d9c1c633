"""crmcore: accounts: contacts, organisation hierarchy, typed links, account team, scores.

Also ``crm_interactions.contact_id``: the contact person involved when an
interaction is with an organisation.

Revision ID: crmcore_0009
Revises: crmcore_0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, UTCDateTime

revision = "crmcore_0009"
down_revision = "crmcore_0008"
branch_labels = None
depends_on = None


def _ref(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        ["crm_customers.id"],
        name=f"fk_{table}_{column}_crm_customers",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "crm_contacts",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("person_id", IdType, nullable=False),
        sa.Column("organisation_id", IdType, nullable=False),
        sa.Column("job_title", sa.String(200)),
        sa.Column("department", sa.String(200)),
        sa.Column("role", sa.String(40)),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("start_date", sa.Date),
        sa.Column("end_date", sa.Date),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_contacts"),
        _ref("crm_contacts", "person_id"),
        _ref("crm_contacts", "organisation_id"),
        sa.UniqueConstraint("person_id", "organisation_id", name="uq_crm_contacts_person_org"),
    )
    op.create_index("ix_crm_contacts_person_id", "crm_contacts", ["person_id"])
    op.create_index("ix_crm_contacts_organisation_id", "crm_contacts", ["organisation_id"])
    op.create_index(
        "ix_crm_contacts_one_primary",
        "crm_contacts",
        ["organisation_id"],
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    )
    op.create_table(
        "crm_account_parents",
        sa.Column("organisation_id", IdType, nullable=False),
        sa.Column("parent_id", IdType, nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_crm_account_parents"),
        _ref("crm_account_parents", "organisation_id"),
        _ref("crm_account_parents", "parent_id"),
    )
    op.create_index("ix_crm_account_parents_parent_id", "crm_account_parents", ["parent_id"])
    op.create_table(
        "crm_customer_links",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("from_id", IdType, nullable=False),
        sa.Column("to_id", IdType, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_customer_links"),
        _ref("crm_customer_links", "from_id"),
        _ref("crm_customer_links", "to_id"),
        sa.UniqueConstraint("from_id", "to_id", "type", name="uq_crm_customer_links_from_to_type"),
    )
    op.create_index("ix_crm_customer_links_from_id", "crm_customer_links", ["from_id"])
    op.create_index("ix_crm_customer_links_to_id", "crm_customer_links", ["to_id"])
    op.create_table(
        "crm_account_team",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "user", name="pk_crm_account_team"),
        _ref("crm_account_team", "customer_id"),
    )
    op.create_table(
        "crm_relationship_scores",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("account_id", IdType, nullable=False),
        sa.Column("contact_id", IdType),
        sa.Column("dimension", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("measured_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_crm_relationship_scores"),
        _ref("crm_relationship_scores", "account_id"),
        _ref("crm_relationship_scores", "contact_id"),
    )
    op.create_index(
        "ix_crm_relationship_scores_account_time",
        "crm_relationship_scores",
        ["account_id", "measured_at"],
    )
    with op.batch_alter_table("crm_interactions") as batch:
        batch.add_column(sa.Column("contact_id", IdType, nullable=True))
        batch.create_foreign_key(
            "fk_crm_interactions_contact_id_crm_customers",
            "crm_customers",
            ["contact_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_crm_interactions_contact_id", ["contact_id"])


def downgrade() -> None:
    with op.batch_alter_table("crm_interactions") as batch:
        batch.drop_index("ix_crm_interactions_contact_id")
        batch.drop_constraint("fk_crm_interactions_contact_id_crm_customers", type_="foreignkey")
        batch.drop_column("contact_id")
    for table in (
        "crm_relationship_scores",
        "crm_account_team",
        "crm_customer_links",
        "crm_account_parents",
        "crm_contacts",
    ):
        op.drop_table(table)
