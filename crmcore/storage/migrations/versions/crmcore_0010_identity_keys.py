"""crmcore: identity keys re-normalised (E.164 phones, Chinese legal forms); collisions table.

Phone keys become E.164 (``phonenumbers``; national forms read in
``[customers] default_region``, which ``crm db upgrade`` hands to the
migration, CN when unset) and organisation-name keys lose Chinese legal
forms and full-width punctuation. Customers the new keys make duplicates do
not fail the upgrade: the oldest keeps the key, the others' key becomes NULL
and ``crm_identity_collisions`` records each pair (``crm customers
duplicates`` lists them). Blind-indexed keys (encryption on) are left for
``crm security rotate-key``. A summary is logged (logger
``crmcore.migrations``; a warning when something needs the operator).

The downgrade drops the collisions table and leaves the keys in the new form.

Revision ID: crmcore_0010
Revises: crmcore_0009
Create Date: 2026-12-01
"""

import logging

import sqlalchemy as sa
from alembic import context, op

from crmcore.model.identity import DEFAULT_REGION
from crmcore.storage.rekey import rekey_identity
from crmcore.storage.types import IdType, UTCDateTime

revision = "crmcore_0010"
down_revision = "crmcore_0009"
branch_labels = None
depends_on = None

#: The ``Config.attributes`` entry through which ``crm db upgrade`` passes the region.
REGION_ATTRIBUTE = "crmcore.default_region"
log = logging.getLogger("crmcore.migrations")


def upgrade() -> None:
    op.create_table(
        "crm_identity_collisions",
        sa.Column("id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("holder_id", IdType, nullable=False),
        sa.Column("key_column", sa.String(20), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("found_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_identity_collisions"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            name="fk_crm_identity_collisions_customer_id_crm_customers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["crm_customers.id"],
            name="fk_crm_identity_collisions_holder_id_crm_customers",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_crm_identity_collisions_customer_id", "crm_identity_collisions", ["customer_id"]
    )
    op.create_index(
        "ix_crm_identity_collisions_holder_id", "crm_identity_collisions", ["holder_id"]
    )
    region = context.config.attributes.get(REGION_ATTRIBUTE) or DEFAULT_REGION
    report = rekey_identity(op.get_bind(), region)
    needs_attention = report.collisions or report.kept or any(report.blinded.values())
    log.log(logging.WARNING if needs_attention else logging.INFO, "%s", report.summary())


def downgrade() -> None:
    op.drop_index("ix_crm_identity_collisions_holder_id", table_name="crm_identity_collisions")
    op.drop_index("ix_crm_identity_collisions_customer_id", table_name="crm_identity_collisions")
    op.drop_table("crm_identity_collisions")
